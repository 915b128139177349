"""The job graph (app.scheduler): jobs start when what they read is done, stages overlap, a
job found done is skipped when its inputs are final, a failure stops the graph; and the run's
own graph (every job needs exactly what it reads)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.executor import Job, LocalExecutor
from app.pipeline import Pipeline
from app.scheduler import check_graph, run_graph
from app.spec import load_spec


class Recorder:
    """An executor that runs submitted jobs in this process, ``slots`` at a time, and records
    the order of events; ``finish_order`` picks which running job ends next."""

    def __init__(self, slots: int = 2, finish_order=None):
        self.slots, self.events, self.running = slots, [], []
        self.finish_order = finish_order or (lambda running: running[0])
        self.cancelled = False

    def submit(self, job: Job) -> None:
        self.events.append(("start", job.name))
        self.running.append(job)

    def next_done(self) -> str:
        job = self.finish_order(self.running)
        self.running.remove(job)
        job.fn(**job.kwargs)
        self.events.append(("end", job.name))
        return job.name

    def cancel(self) -> None:
        self.cancelled = True


def _noop() -> None:
    pass


def _fail() -> None:
    raise RuntimeError("job failed on purpose")


def job(name: str, *after: str, fn=_noop) -> Job:
    return Job(name, fn, {}, tuple(after))


def test_bad_graphs_are_refused_before_anything_runs():
    with pytest.raises(ValueError, match="planned twice"):
        check_graph([job("a"), job("a")])
    with pytest.raises(ValueError, match="'b' needs 'x', which is not planned"):
        check_graph([job("a"), job("b", "x")])
    with pytest.raises(ValueError, match="a cycle among a, b"):
        check_graph([job("a", "b"), job("b", "a"), job("c")])
    ex = Recorder()
    with pytest.raises(ValueError):
        run_graph([job("a", "a")], ex)
    assert ex.events == []


def test_a_job_starts_only_after_what_it_reads_and_stages_overlap():
    # teacher t1 ends first: its students start while t2 still trains (no stage barrier)
    jobs = [job("base"), job("t1", "base"), job("t2", "base"),
            job("s1", "t1"), job("s2", "t2"), job("audit-s1", "s1")]
    slow_t2 = lambda running: next((j for j in running if j.name != "t2"), running[0])  # noqa: E731
    ex = Recorder(slots=2, finish_order=slow_t2)
    spans = run_graph(jobs, ex)
    ev = ex.events
    for j in jobs:
        for d in j.after:
            assert ev.index(("end", d)) < ev.index(("start", j.name)), (d, j.name)
    assert ev.index(("start", "s1")) < ev.index(("end", "t2"))  # overlap across stages
    assert ev.index(("start", "audit-s1")) < ev.index(("end", "t2"))
    assert all(s.ran for s in spans.values()) and set(spans) == {j.name for j in jobs}
    started = [n for kind, n in ev if kind == "start"]
    assert started[:3] == ["base", "t1", "t2"]  # plan order among ready jobs


def test_never_more_jobs_at_once_than_slots():
    ex = Recorder(slots=2)
    peak = []
    real_submit = ex.submit
    ex.submit = lambda j: (real_submit(j), peak.append(len(ex.running)))
    run_graph([job(f"j{i}") for i in range(7)], ex)
    assert max(peak) == 2 and len(peak) == 7


def test_done_jobs_are_skipped_when_their_inputs_are_ready_and_dependents_still_run():
    asked = []

    def must_run(j: Job) -> bool:
        asked.append(j.name)
        return j.name != "t1"

    ex = Recorder()
    spans = run_graph([job("base"), job("t1", "base"), job("s1", "t1")], ex, must_run)
    assert asked == ["base", "t1", "s1"]  # each asked only once its inputs were final
    assert not spans["t1"].ran and spans["s1"].ran and spans["base"].ran
    assert ("start", "t1") not in ex.events


def test_a_failure_cancels_the_rest_and_is_raised():
    ex = Recorder(slots=1)
    with pytest.raises(RuntimeError, match="on purpose"):
        run_graph([job("a", fn=_fail), job("b", "a"), job("c")], ex)
    assert ex.cancelled
    assert ("start", "b") not in ex.events


def stamp(folder: str, name: str, seconds: float) -> None:
    """A pool job: record when it started and ended."""
    t0 = time.time()
    time.sleep(seconds)
    Path(folder, f"{name}.json").write_text(json.dumps([t0, time.time()]))


def test_the_local_pool_runs_a_graph_in_two_processes(tmp_path):
    mk = lambda name, s, *after: Job(name, stamp, {"folder": str(tmp_path), "name": name, "seconds": s},  # noqa: E731
                                     tuple(after))
    ex = LocalExecutor(2)
    try:
        out = ex.run([mk("a", 0.2), mk("b", 1.2), mk("c", 0.2, "a"), mk("d", 0.2, "c", "b")], "t")
    finally:
        ex.close()
    assert set(out) == {"a", "b", "c", "d"}
    t = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in "abcd"}
    assert t["c"][0] >= t["a"][1] and t["c"][0] < t["b"][1]  # c ran beside b, after a
    assert t["d"][0] >= max(t["b"][1], t["c"][1])


def test_the_runs_graph_names_exactly_what_each_job_reads(tmp_path):
    p = Pipeline(load_spec("default"), tmp_path)
    plan = p.plan()
    jobs = [j for planned in plan.values() for j, _, _ in planned]
    check_graph(jobs)
    by = {j.name: j for j in jobs}
    assert by["base"].after == ()
    assert by["teacher-backdoor"].after == ("base",)
    assert by["backdoor.logit-kd"].after == ("teacher-backdoor",)
    assert set(by["audit:base@sabotage"].after) == {"base"}
    assert by["audit:sabotage.jam"].after == ("sabotage.jam",)
    assert set(by["features:sabotage.jam"].after) == {"audit:sabotage.jam", "audit:sabotage.negative-control"}
    roles = p.roles("sabotage", next(s for s in p.spec.all_students() if s.label == "jam"))
    models = set(roles.values()) | {"sabotage.jam"}
    assert {d for d in by["compare:sabotage.jam"].after if d.startswith("audit:")} == {f"audit:{m}" for m in models}
    assert "features:sabotage.jam" in by["compare:sabotage.jam"].after


def test_students_that_never_see_the_teacher_are_trained_once_per_run(tmp_path):
    """Negative controls of two teachers of one base are the same training: the second
    organism's waits for the first's and takes its weights (distill_student(twin=))."""
    p = Pipeline(load_spec("default"), tmp_path)
    plan = p.plan()
    students = {j.name: j for j, _, _ in plan["students"]}
    for label in ("negative-control", "negative-control-fresh", "negative-control-smaller-null"):
        twin = students[f"sabotage.{label}"]
        assert twin.kwargs["twin_organism"] == "backdoor"
        assert f"backdoor.{label}" in twin.after
        assert students[f"backdoor.{label}"].kwargs["twin_organism"] is None
    assert students["sabotage.logit-kd"].kwargs["twin_organism"] is None  # it reads its own teacher
