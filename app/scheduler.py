"""Run a graph of jobs on an executor: every job starts as soon as the jobs it needs are done.

A run is a dependency graph, not a row of stages: a teacher's students start while the other
teacher still trains, a student's audit while other students train, and no job waits on work
it does not need (``Job.after`` names exactly what it reads). Whenever the executor has a free
slot, the ready job that comes first in plan order is started (plan order is stage order, so
training is never starved by the cheaper analysis jobs that pile up behind it).

Hand-written: the executors here (a process pool, Ray tasks) run independent jobs; none of
the libraries in use schedules a graph whose nodes may turn out to be already done (a
finished stage is only known to be valid once the stages it read are final, so whether a job
must run is decided by ``must_run`` at the moment its inputs are ready, never earlier).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from app.executor import Job
from distill.progress import progress


@dataclass
class Span:
    """When one job of a graph ran (seconds since the graph started); skipped jobs have none."""

    ran: bool
    start: float = 0.0
    end: float = 0.0


def check_graph(jobs: list[Job]) -> None:
    """ValueError for a repeated job name, a dependency on a job that is not in the graph, or a
    cycle (each would leave a job waiting for ever)."""
    names = [j.name for j in jobs]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"job graph: job {name!r} is planned twice")
        seen.add(name)
    for j in jobs:
        missing = [d for d in j.after if d not in seen]
        if missing:
            raise ValueError(f"job graph: {j.name!r} needs {', '.join(map(repr, missing))}, which is not planned")
    done: set[str] = set()
    left = list(jobs)
    while left:
        ready = [j for j in left if all(d in done for d in j.after)]
        if not ready:
            raise ValueError(f"job graph: a cycle among {', '.join(sorted(j.name for j in left))}")
        done.update(j.name for j in ready)
        left = [j for j in left if j.name not in done]


def run_graph(jobs: list[Job], executor, must_run: Callable[[Job], bool] = lambda job: True,
              desc: str = "jobs") -> dict[str, Span]:
    """Run ``jobs`` (in plan order, each after everything in its ``after``) on ``executor``
    (``slots``, ``submit(job)``, ``next_done() -> name``, ``cancel()``). ``must_run(job)`` is asked
    when the job's inputs are ready: False marks it done without running it. The first failure
    cancels what has not started and is re-raised. Returns every job's :class:`Span`."""
    check_graph(jobs)
    slots = max(1, executor.slots)  # asked once (for Ray it is a call to the cluster)
    order = {j.name: i for i, j in enumerate(jobs)}
    waiting = {j.name: set(j.after) for j in jobs}
    needed_by: dict[str, list[str]] = {j.name: [] for j in jobs}
    for j in jobs:
        for d in j.after:
            needed_by[d].append(j.name)
    by_name = {j.name: j for j in jobs}
    ready = sorted((n for n, w in waiting.items() if not w), key=order.__getitem__)
    spans: dict[str, Span] = {}
    running: dict[str, float] = {}
    t0 = time.perf_counter()

    def finished(name: str) -> None:
        for n in needed_by[name]:
            waiting[n].discard(name)
            if not waiting[n]:
                ready.append(n)
        ready.sort(key=order.__getitem__)

    with progress(total=len(jobs), desc=desc) as bar:
        try:
            while ready or running:
                while ready and len(running) < slots:
                    name = ready.pop(0)
                    if must_run(by_name[name]):
                        running[name] = time.perf_counter() - t0
                        executor.submit(by_name[name])
                    else:
                        spans[name] = Span(False)
                        bar.update(1)
                        finished(name)
                if running:
                    name = executor.next_done()
                    spans[name] = Span(True, running.pop(name), time.perf_counter() - t0)
                    bar.update(1)
                    finished(name)
        except BaseException:
            executor.cancel()
            raise
    return spans
