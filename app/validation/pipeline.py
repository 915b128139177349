"""The validation suite's runs: the ordinary pipeline, audits of the teachers only, relearning,
every seed's jobs of one stage run together.

The findings read behavioural evals (every model), the teachers' probe audits (finding 2)
and relearning curves (finding 5); no finding needs a student's audit or the teacher-student
comparisons, which would cost more than all the students together. So a seed runs the
stages ``base -> teachers -> students`` exactly as :class:`app.pipeline.Pipeline` plans
them (same jobs, folders and input hashes: a later ``doublebind run`` of the seed's
``spec.toml`` reuses them), audits only the teachers, skips comparisons and the transfer
report, and adds a ``relearn`` stage (``<run>/relearn/<model>.json``, resumable by input hash).

:func:`run_seeds` plans every seed first, then runs stage by stage with the jobs of all
seeds in one pool, so both cores stay busy (one seed's base alone would leave one idle).
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from app.executor import Job, run_jobs
from app.pipeline import Pipeline, job_audit
from app.runfolder import RunFolder, teacher_id
from app.runlock import run_lock
from app.spec import ExperimentSpec, to_toml
from app.stages import content_hash, mark_done, pending, stage_seconds
from app.validation.measure import relearn_file
from app.validation.spec import RelearnPlan
from distill.checkpoint import atomic_write_bytes

STAGES = ("base", "teachers", "students", "audits", "relearn")
Planned = list[tuple[Job, Path, str]]
"""(job, folder whose stage.json marks it done, input hash) triples of one stage."""


def job_relearn(root: str, model_id: str, plan_json: dict, input_hash: str, device: str) -> None:
    """Relearn one stored model and write its curve (runs in a worker process)."""
    from distill.relearn import relearn_folder
    rf, t0 = RunFolder(Path(root)), time.perf_counter()
    plan = RelearnPlan(**plan_json)
    result = relearn_folder(rf.model_dir(model_id), plan.config, plan.eval, device=device)
    path = relearn_file(rf, model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(result.to_json(), indent=2).encode())
    mark_done(_relearn_marker(rf, model_id), "relearn", input_hash, time.perf_counter() - t0, root=rf.root,
              artifacts=[path], reads=[rf.model_dir(model_id)])


def _relearn_marker(rf: RunFolder, model_id: str) -> Path:
    return relearn_file(rf, model_id).parent / "stages" / model_id


class ValidationPipeline(Pipeline):
    """Plans one seed's stages (the pipeline's own jobs and hashes) without running them."""

    def __init__(self, spec: ExperimentSpec, out: Path | str, relearn: RelearnPlan, device: str = "cpu"):
        super().__init__(spec, out, device)
        self.relearn_plan = relearn
        self.planned: dict[str, Planned] = {}

    def _stage(self, name: str, planned: Planned) -> None:
        self.planned[name] = planned  # collected; run_seeds runs them

    def audits(self) -> None:
        """Teachers only; the job and the hash are the pipeline's own."""
        planned = []
        for org in self.spec.organisms:
            mid = teacher_id(org)
            h = content_hash("audit", self.hashes[mid], org, self.spec.audit)
            self.hashes[f"audit:{mid}"] = h
            planned.append((self._job(f"audit:{mid}", job_audit, model_id=mid, organism=org, input_hash=h),
                            self.rf.probes(mid), h))
        self._stage("audits", planned)

    def relearn(self) -> None:
        plan_json = self.relearn_plan.model_dump(mode="json")
        planned = []
        for mid in self.relearn_plan.models:
            h = content_hash("relearn", self.hashes[mid], plan_json)
            job = Job(f"relearn:{mid}", job_relearn, {"root": str(self.rf.root), "model_id": mid,
                                                     "plan_json": plan_json, "input_hash": h, "device": self.device})
            planned.append((job, _relearn_marker(self.rf, mid), h))
        self._stage("relearn", planned)

    def plan(self) -> dict[str, Planned]:
        """Write spec.toml and plan every stage (stale model folders are cleared, as the pipeline does)."""
        self.rf.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.rf.spec, to_toml(self.spec).encode())
        for stage in (self.base, self.teachers, self.student_stage, self.audits, self.relearn):
            stage()
        return self.planned


@dataclass
class StageRun:
    stage: str
    jobs: int
    skipped: int
    seconds: float
    """Wall time of the stage in this invocation."""
    job_seconds: float
    """Sum of the jobs' own recorded times (kept across resumes; single-threaded jobs, so on an
    idle machine the stage takes about job_seconds / workers)."""


def run_seeds(pipelines: list[ValidationPipeline], workers: int) -> list[StageRun]:
    """Run every seed's jobs stage by stage, all seeds of a stage in one pool; skip finished jobs."""
    with ExitStack() as locks:  # each seed's run folder has one writer, as in the pipeline
        for p in pipelines:
            locks.enter_context(run_lock(p.rf.root))
        return _run_stages(pipelines, workers)


def _run_stages(pipelines: list[ValidationPipeline], workers: int) -> list[StageRun]:
    plans = [p.plan() for p in pipelines]
    out = []
    for stage in STAGES:
        t0 = time.perf_counter()
        planned = [(seed, item) for seed, plan in enumerate(plans) for item in plan.get(stage, [])]
        todo = pending([(Job(f"{pipelines[s].rf.root.name}:{job.name}", job.fn, job.kwargs), folder, h)
                        for s, (job, folder, h) in planned], what=stage)
        run_jobs(todo, workers, desc=stage)
        spent = sum(stage_seconds(folder) or 0.0 for _, (_, folder, _) in planned)
        out.append(StageRun(stage, len(planned), len(planned) - len(todo), time.perf_counter() - t0, spent))
    return out
