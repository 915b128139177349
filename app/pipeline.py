"""Run an experiment spec end to end, stage by stage, resumably.

Stages (each a set of independent jobs run on all cores, see :mod:`app.executor`)::

    base -> teachers -> students -> audits -> comparisons -> report

A stage's folder records the hash of its inputs (:mod:`app.stages`); a finished stage
whose inputs did not change is skipped, so running the same command again after an
interruption redoes nothing that finished. Work is never done twice within a run: one
base serves every organism; each teacher's outputs on a transfer set are cached once
(``cache/``, keyed by the teacher's hash) and shared by every student using them; each model's activations
on the shared probe prompts are cached once (``acts/<model>/``) and reused by probes, SAEs
and the comparisons.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.executor import Job, run_jobs
from app.runfolder import RunFolder, student_id, teacher_id
from app.spec import ExperimentSpec, StudentSpec, to_toml
from app.stages import content_hash, done_hash, is_done, mark_done
from distill.checkpoint import atomic_write_bytes

CHECKPOINTS = ".checkpoints"


@dataclass
class StageTiming:
    stage: str
    jobs: int
    skipped: int
    seconds: float


@dataclass
class RunResult:
    run_dir: Path
    timings: list[StageTiming] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"{'stage':12s} {'jobs':>5s} {'skipped':>8s} {'seconds':>8s}"]
        for t in self.timings:
            lines.append(f"{t.stage:12s} {t.jobs:5d} {t.skipped:8d} {t.seconds:8.1f}")
        lines.append(f"{'total':12s} {'':5s} {'':8s} {sum(t.seconds for t in self.timings):8.1f}")
        return "\n".join(lines)


# ---- jobs (module level: they run in worker processes) -------------------------------------

def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=2).encode())


def job_base(spec_json: dict, root: str, input_hash: str, device: str) -> None:
    from distill.evals import EvalConfig, evaluate
    from distill.store import load_model
    from distill.teacher import TeacherSpec, train_base
    spec, rf, t0 = TeacherSpec(**spec_json["teacher"]), RunFolder(Path(root)), time.perf_counter()
    train_base(spec, spec_json["seed"], rf.base, device, resume_dir=_ckpt(rf, "base", input_hash))
    model, _ = load_model(rf.base, device)
    _write_json(rf.evals("base"), evaluate(model, spec_json["organisms"], EvalConfig(**spec_json["eval"])))
    mark_done(rf.base, "base", input_hash, time.perf_counter() - t0)


def job_teacher(spec_json: dict, root: str, organism: str, input_hash: str, device: str) -> None:
    from distill.evals import EvalConfig, evaluate
    from distill.store import load_model
    from distill.teacher import TeacherSpec, train_teacher
    spec, rf, t0 = TeacherSpec(**spec_json["teacher"]), RunFolder(Path(root)), time.perf_counter()
    out = rf.teacher(organism)
    train_teacher(spec, organism, rf.base, spec_json["seed"], out, device,
                  resume_dir=_ckpt(rf, teacher_id(organism), input_hash))
    model, _ = load_model(out, device)
    evals = evaluate(model, [organism], EvalConfig(**spec_json["eval"]))
    _write_json(out / "evals.json", evals)
    _write_json(rf.evals(teacher_id(organism)), evals)
    mark_done(out, "teacher", input_hash, time.perf_counter() - t0)


def _ckpt(rf: RunFolder, name: str, input_hash: str) -> Path:
    """Checkpoints are keyed by input hash: a changed spec never resumes a stale run."""
    return rf.root / CHECKPOINTS / f"{name}-{input_hash[:16]}"


def job_student(spec_json: dict, root: str, organism: str, student: dict, input_hash: str,
                device: str) -> None:
    from distill.distiller import distill_student
    from distill.evals import EvalConfig
    rf, st, t0 = RunFolder(Path(root)), StudentSpec(**student), time.perf_counter()
    out = rf.student(organism, st.label)
    distill_student(rf.teacher(organism), st.technique, st.params, st.init, st.init_params,
                    seed=spec_json["seed"], out=out, device=device,
                    cache_dir=rf.root / "cache", eval_cfg=EvalConfig(**spec_json["eval"]))
    shutil.copyfile(out / "evals.json", rf.evals(student_id(organism, st.label)))
    mark_done(out, "student", input_hash, time.perf_counter() - t0)


def job_audit(spec_json: dict, root: str, model_id: str, organism: str, input_hash: str,
              device: str) -> None:
    from distill.store import load_model
    from probes.audit import AuditConfig, audit_model, probe_cache
    rf, t0 = RunFolder(Path(root)), time.perf_counter()
    model, _ = load_model(rf.model_dir(model_id), device)
    cfg = AuditConfig(**spec_json["audit"])
    _, acts = probe_cache(model, organism, cfg)
    out = rf.probes(model_id)
    shutil.rmtree(out, ignore_errors=True)
    audit_model(model, organism, cfg, out_dir=out, acts=acts, model_name=model_id)
    acts.save(rf.acts(model_id))
    mark_done(out, "audit", input_hash, time.perf_counter() - t0)


def artifacts(rf: RunFolder, model_id: str):
    """Where the comparison finds one model's stored outputs."""
    from analysis.compare import ModelArtifacts
    return ModelArtifacts(name=model_id, model_dir=rf.model_dir(model_id), evals_file=rf.evals(model_id),
                          audit_dir=rf.probes(model_id), acts_dir=rf.acts(model_id))


def job_compare(spec_json: dict, root: str, organism: str, student: dict, input_hash: str,
                device: str) -> None:
    from analysis.compare import compare_student
    from analysis.config import AnalysisConfig
    from analysis.results import write_student
    rf, st, t0 = RunFolder(Path(root)), StudentSpec(**student), time.perf_counter()
    sid = student_id(organism, st.label)
    result = compare_student(artifacts(rf, teacher_id(organism)), artifacts(rf, sid), organism,
                             st.technique, st.init, st.params, AnalysisConfig(**spec_json["analysis"]), device)
    path = write_student(rf.root, result)
    mark_done(_compare_marker(rf, sid), "compare", input_hash, time.perf_counter() - t0)
    return str(path)


def _compare_marker(rf: RunFolder, sid: str) -> Path:
    return rf.analysis / "stages" / sid


# ---- the pipeline ----------------------------------------------------------------------------

class Pipeline:
    """Plans each stage's jobs from the spec, skips finished ones, runs the rest."""

    def __init__(self, spec: ExperimentSpec, out: Path | str, device: str = "cpu"):
        self.spec, self.rf, self.device = spec, RunFolder(Path(out)), device
        self.spec_json = spec.model_dump(mode="json")
        self.result = RunResult(self.rf.root)
        self.hashes: dict[str, str] = {}

    def _stage(self, name: str, planned: list[tuple[Job, Path, str]]) -> None:
        """Run the planned (job, done-folder, input hash) triples that are not done yet."""
        t0 = time.perf_counter()
        todo = [job for job, folder, h in planned if not is_done(folder, h)]
        run_jobs(todo, self.spec.workers, desc=name)
        self.result.timings.append(StageTiming(name, len(planned), len(planned) - len(todo),
                                               time.perf_counter() - t0))

    def _job(self, name: str, fn, **kwargs) -> Job:
        return Job(name, fn, {"spec_json": self.spec_json, "root": str(self.rf.root),
                              "device": self.device, **kwargs})

    def students(self) -> list[tuple[str, StudentSpec]]:
        return [(org, st) for st in self.spec.students for org in self.spec.student_organisms(st)]

    # -- stages --
    def base(self) -> None:
        t = self.spec.teacher
        h = content_hash("base", t.model.model_dump(), t.base_train.model_dump(), self.spec.seed,
                         self.spec.organisms, self.spec.eval.model_dump())
        self.hashes["base"] = h
        self._stage("base", [(self._job("base", job_base, input_hash=h), self.rf.base, h)])

    def teachers(self) -> None:
        planned = []
        for org in self.spec.organisms:
            h = content_hash("teacher", self.hashes["base"], org, self.spec.teacher.teacher_train.model_dump(),
                             self.spec.teacher.organism_frac)
            self.hashes[teacher_id(org)] = h
            folder = self.rf.teacher(org)
            self._clear_stale(folder, h)
            planned.append((self._job(teacher_id(org), job_teacher, organism=org, input_hash=h), folder, h))
        self._stage("teachers", planned)

    def student_stage(self) -> None:
        planned = []
        for org, st in self.students():
            sid = student_id(org, st.label)
            h = content_hash("student", self.hashes[teacher_id(org)], st.model_dump(mode="json"))
            self.hashes[sid] = h
            folder = self.rf.student(org, st.label)
            self._clear_stale(folder, h)
            planned.append((self._job(sid, job_student, organism=org, student=st.model_dump(mode="json"),
                                      input_hash=h), folder, h))
        self._stage("students", planned)

    def audits(self) -> None:
        planned = []
        models = [(teacher_id(o), o) for o in self.spec.organisms] + [
            (student_id(o, st.label), o) for o, st in self.students()]
        for mid, org in models:
            h = content_hash("audit", self.hashes[mid], org, self.spec.audit)
            self.hashes[f"audit:{mid}"] = h
            planned.append((self._job(f"audit:{mid}", job_audit, model_id=mid, organism=org, input_hash=h),
                            self.rf.probes(mid), h))
        self._stage("audits", planned)

    def comparisons(self) -> None:
        planned = []
        for org, st in self.students():
            sid = student_id(org, st.label)
            h = content_hash("compare", self.hashes[f"audit:{teacher_id(org)}"], self.hashes[f"audit:{sid}"],
                             self.spec.analysis, st.model_dump(mode="json"))
            planned.append((self._job(f"compare:{sid}", job_compare, organism=org,
                                      student=st.model_dump(mode="json"), input_hash=h),
                            _compare_marker(self.rf, sid), h))
        self._stage("comparisons", planned)

    def report(self) -> None:
        from analysis.compare import teacher_result
        from analysis.config import AnalysisConfig
        from analysis.report import build_report
        from analysis.results import write_experiment, write_teacher
        from analysis.schema import ExperimentInfo
        t0 = time.perf_counter()
        cfg = AnalysisConfig(**self.spec.analysis)
        for org in self.spec.organisms:
            write_teacher(self.rf.root, teacher_result(artifacts(self.rf, teacher_id(org)), org))
        write_experiment(self.rf.root, ExperimentInfo(
            experiment=self.spec.name, thresholds=cfg.thresholds,
            student_order=[student_id(o, st.label) for o, st in self.students()]))
        build_report(self.rf.root)
        self.result.timings.append(StageTiming("report", 1, 0, time.perf_counter() - t0))

    def _clear_stale(self, folder: Path, input_hash: str) -> None:
        """A model folder finished from other inputs is removed so the stage re-runs cleanly."""
        old = done_hash(folder)
        if old is not None and old != input_hash:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(folder.with_name(folder.name + ".work"), ignore_errors=True)

    def run(self) -> RunResult:
        self.rf.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.rf.spec, to_toml(self.spec).encode())
        for stage in (self.base, self.teachers, self.student_stage, self.audits, self.comparisons,
                      self.report):
            stage()
        _write_json(self.rf.timings, [t.__dict__ for t in self.result.timings])
        return self.result


def run_experiment(spec: ExperimentSpec, out: Path | str, device: str = "cpu") -> RunResult:
    """Run (or resume) ``spec`` into the run folder ``out``."""
    return Pipeline(spec, out, device).run()
