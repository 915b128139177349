"""The validation suite's runs: the ordinary pipeline, audits of the teachers only, relearning,
all seeds' jobs in one job graph.

The findings read behavioural evals (every model), the teachers' probe audits (finding 2)
and relearning curves (finding 5); no finding needs a student's audit or the teacher-student
comparisons, which would cost more than all the students together. So a seed runs the
stages ``base -> teachers -> students`` exactly as :class:`app.pipeline.Pipeline` plans
them (same jobs, folders and input hashes: a later ``doublebind run`` of the seed's
``spec.toml`` reuses them), audits only the teachers, skips comparisons and the transfer
report, and adds a ``relearn`` stage (``<run>/relearn/<model>.json``, resumable by input hash).

:func:`run_seeds` plans every seed first, then runs the jobs of all seeds as one job graph
(:func:`app.pipeline.run_grid`, also behind ``doublebind sweep``), so both cores stay busy
(one seed's base alone would leave one idle).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from app.executor import Job
from app.pipeline import Pipeline, StageRun, job_audit, run_grid
from app.runfolder import RunFolder, teacher_id
from app.spec import ExperimentSpec
from app.stages import content_hash, mark_done
from app.validation.measure import relearn_file
from app.validation.spec import RelearnPlan
from distill.checkpoint import atomic_write_bytes



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
    """One seed's stages: the pipeline's own jobs and hashes for base, teachers and students,
    audits of the teachers only, and relearning; no features, comparisons or report."""

    def __init__(self, spec: ExperimentSpec, out: Path | str, relearn: RelearnPlan, device: str = "cpu"):
        super().__init__(spec, out, device)
        self.relearn_plan = relearn

    def steps(self) -> tuple:
        return self.base, self.teachers, self.student_stage, self.audits, self.relearn

    def finish(self) -> None:
        pass  # measured and judged by the suite

    def audits(self) -> None:
        """Teachers only; the job and the hash are the pipeline's own."""
        planned = []
        for org in self.spec.organisms:
            mid = teacher_id(org)
            h = content_hash("audit", self.hashes[mid], org, self.spec.audit)
            self.hashes[f"audit:{mid}"] = h
            planned.append((self._job(f"audit:{mid}", job_audit, [mid], model_id=mid, organism=org,
                                      input_hash=h), self.rf.probes(mid), h))
        self._stage("audits", planned)

    def relearn(self) -> None:
        plan_json = self.relearn_plan.model_dump(mode="json")
        planned = []
        for mid in self.relearn_plan.models:
            h = content_hash("relearn", self.hashes[mid], plan_json)
            job = Job(f"relearn:{mid}", job_relearn, {"root": str(self.rf.root), "model_id": mid,
                                                     "plan_json": plan_json, "input_hash": h, "device": self.device},
                      after=(self.trained_by(mid),))
            planned.append((job, _relearn_marker(self.rf, mid), h))
        self._stage("relearn", planned)


def run_seeds(pipelines: list[ValidationPipeline], executor) -> list[StageRun]:
    """Every seed's jobs as one job graph (:func:`app.pipeline.run_grid`, the machinery of
    ``doublebind sweep``)."""
    return run_grid(pipelines, executor)
