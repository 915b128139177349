"""Run a stage's independent jobs: the executor backends and the local process pool.

Two backends share one interface (``run(jobs, desc) -> {name: result}``, ``close()``) and
run the same module-level job functions, one torch thread each, so their results are
bit-identical: :class:`LocalExecutor` (default) and the Ray backend
(:mod:`app.ray_backend`, ``--executor ray``). :data:`EXECUTORS` is the registry.

The local pool:

Tiny models use cores better as separate single-threaded processes than as one
multi-threaded one, so a stage with several jobs runs them in a pool of ``workers``
processes, and every job runs with ONE torch thread. One thread also keeps a run robust on
a busy machine (two OpenMP threads sharing one free core spin against each other and run
10-30x slower) and makes a run's numbers independent of the machine's core count.
With one worker, jobs run in this process (simpler tracebacks, used by tests).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable

import torch

from distill.progress import progress


JOB_THREADS = 1
PARENT_POLL_S = 0.2
"""How often a worker checks that the process that started it is alive."""


@dataclass
class Job:
    name: str
    fn: Callable[..., Any]
    """A module-level function (it is pickled by name into the worker)."""
    kwargs: dict


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
    """Run ``jobs``; return {job name: result}. The first failure is re-raised."""
    if not jobs:
        return {}
    threads = JOB_THREADS
    results: dict[str, Any] = {}
    with progress(total=len(jobs), desc=desc) as bar:
        if workers <= 1 or len(jobs) == 1:
            before = torch.get_num_threads()
            try:
                for job in jobs:
                    results[job.name] = _call(job.fn, job.kwargs, threads)
                    bar.update(1)
            finally:
                torch.set_num_threads(before)
            return results
        ctx = mp.get_context("spawn")  # fork + torch threads can deadlock
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                                 initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(_call, j.fn, j.kwargs, threads): j.name for j in jobs}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
    return results


class LocalExecutor:
    """The local pool (the default backend): ``workers`` single-threaded processes here."""

    name = "local"

    def __init__(self, workers: int, address: str | None = None):
        if address:
            raise ValueError("a Ray address needs the ray executor (--executor ray)")
        self.workers = workers

    def run(self, jobs: list[Job], desc: str) -> dict[str, Any]:
        return run_jobs(jobs, self.workers, desc)

    def close(self) -> None:
        pass


def _ray(workers: int, address: str | None = None):
    from app.ray_backend import RayExecutor  # imported only when asked for: Ray is heavy
    return RayExecutor(workers, address)


EXECUTORS: dict[str, Callable[..., Any]] = {"local": LocalExecutor, "ray": _ray}
"""Backend name -> factory(workers, address)."""


def make_executor(name: str, workers: int, address: str | None = None):
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
    return EXECUTORS[name](workers, address)
