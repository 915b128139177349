"""The executor backends: where jobs run. The local process pool and the Ray backend.

Two backends share one interface: ``slots`` (jobs that run at once), ``submit(job)``,
``next_done() -> name`` (blocks until a submitted job finishes; its failure is raised there),
``cancel()``, ``close()``, and ``run(jobs, desc) -> {name: result}`` on top. :mod:`app.scheduler`
drives them through a job graph. Both run the same module-level job functions, one torch
thread each, so their results are bit-identical: :class:`LocalExecutor` (default) and the
Ray backend (:mod:`app.ray_backend`, ``--executor ray``). :data:`EXECUTORS` is the registry.

The local pool:

Tiny models use cores better as separate single-threaded processes than as one
multi-threaded one (two threads make a training step only 15% faster, 65 -> 56 ms, and
change its floating-point sums), so jobs run in a pool of ``workers`` processes, every job
with ONE torch thread. One thread also keeps a run robust on a busy machine (two OpenMP
threads sharing one free core spin against each other and run 10-30x slower) and makes a
run's numbers independent of the machine's core count. With one worker, jobs run in this
process (simpler tracebacks, used by tests).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


JOB_THREADS = 1
PARENT_POLL_S = 0.2
"""How often a worker checks that the process that started it is alive."""


@dataclass
class Job:
    name: str
    fn: Callable[..., Any]
    """A module-level function (it is pickled by name into the worker)."""
    kwargs: dict
    after: tuple[str, ...] = field(default=())
    """Names of the jobs whose outputs this one reads (it starts when they are done)."""


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: exit as soon as the parent is gone (a ``kill -9`` of the run must
    not leave workers writing into the run folder). Polling ``getppid`` is portable and, unlike
    ``PR_SET_PDEATHSIG``, does not fire when merely the thread that spawned the worker exits."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)
    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _call(fn, kwargs, threads: int):
    torch.set_num_threads(threads)
    return fn(**kwargs)


def run_jobs(jobs: list[Job], workers: int, desc: str) -> dict[str, Any]:
    """Run ``jobs`` on a local pool of ``workers``; return {job name: result}. The first
    failure is re-raised."""
    executor = LocalExecutor(workers)
    try:
        return executor.run(jobs, desc)
    finally:
        executor.close()


class Executor:
    """What both backends share: ``run`` drives a subclass's ``slots`` / ``submit`` /
    ``next_done`` / ``cancel`` through :func:`app.scheduler.run_graph` and collects ``results``."""

    results: dict[str, Any]
    """Job name -> what the job returned (every job of the executor's life)."""

    def run(self, jobs: list[Job], desc: str) -> dict[str, Any]:
        """Run ``jobs`` (in dependency order, see :mod:`app.scheduler`); {job name: result}."""
        from app.scheduler import run_graph
        run_graph(jobs, self, desc=desc)
        return {j.name: self.results.get(j.name) for j in jobs}


class LocalExecutor(Executor):
    """The local pool (the default backend): ``workers`` single-threaded processes here, kept
    for the executor's life (one start-up per run, not per stage). With one worker, jobs run
    in this process."""

    name = "local"

    def __init__(self, workers: int, address: str | None = None):
        if address:
            raise ValueError("a Ray address needs the ray executor (--executor ray)")
        self.workers = workers
        self.results = {}
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, str] = {}
        self._queue: list[Job] = []

    @property
    def slots(self) -> int:
        """Jobs that run at once."""
        return max(1, self.workers)

    def submit(self, job: Job) -> None:
        if self.workers <= 1:
            self._queue.append(job)
            return
        if self._pool is None:
            ctx = mp.get_context("spawn")  # fork + torch threads can deadlock
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                             initializer=_die_with_parent, initargs=(os.getpid(),))
        self._futures[self._pool.submit(_call, job.fn, job.kwargs, JOB_THREADS)] = job.name

    def next_done(self) -> str:
        """Wait for a submitted job to finish; its name (its exception is raised here)."""
        if self.workers <= 1:
            job = self._queue.pop(0)
            before = torch.get_num_threads()
            try:
                self.results[job.name] = _call(job.fn, job.kwargs, JOB_THREADS)
            finally:
                torch.set_num_threads(before)
            return job.name
        done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
        fut = min(done, key=lambda f: self._futures[f])  # a deterministic pick among simultaneous ends
        name = self._futures.pop(fut)
        self.results[name] = fut.result()
        return name

    def cancel(self) -> None:
        """Drop every submitted job that has not started (running ones finish)."""
        self._queue.clear()
        for fut in self._futures:
            fut.cancel()
        self._futures.clear()

    def close(self) -> None:
        self.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _ray(workers: int, address: str | None = None):
    from app.ray_backend import RayExecutor  # imported only when asked for: Ray is heavy
    return RayExecutor(workers, address)


EXECUTORS: dict[str, Callable[..., Any]] = {"local": LocalExecutor, "ray": _ray}
"""Backend name -> factory(workers, address)."""


def make_executor(name: str, workers: int, address: str | None = None):
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
    return EXECUTORS[name](workers, address)
