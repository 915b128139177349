"""Run an experiment spec end to end, stage by stage, resumably.

Stages (each a set of independent jobs run by an executor backend, see :mod:`app.executor`)::

    base -> teachers -> students -> audits -> features -> comparisons -> report

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
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from analysis.results import BASE_FILE, TEACHERS_DIR
from app.executor import Job, LocalExecutor
from app.runfolder import RunFolder, base_id, student_id, teacher_id
from app.runlock import run_lock
from app.scheduler import Span, run_graph
from app.spec import ExperimentSpec, StudentSpec, to_toml
from app.stages import check_stage, content_hash, mark_done, output_digest, pending, stage_seconds
from distill.checkpoint import atomic_write_bytes

CHECKPOINTS = ".checkpoints"


@dataclass
class StageTiming:
    """One stage of a run (or of a grid of runs, :func:`run_grid`) in one invocation."""

    stage: str
    jobs: int
    skipped: int
    seconds: float
    """Wall time from the first of the stage's jobs starting to the last one ending in this
    invocation (stages overlap: a stage's jobs start as soon as their own inputs are ready)."""
    job_seconds: float = 0.0
    """Sum of the jobs' own recorded times (kept across resumes; single-threaded jobs, so on an
    idle machine the run takes about the sum over stages / workers)."""


StageRun = StageTiming
"""A stage over all runs of a grid (the validation suite and sweeps report these)."""


Planned = list[tuple[Job, Path, str]]
"""(job, folder whose stage.json marks it done, input hash) triples of one stage."""


@dataclass
class RunResult:
    run_dir: Path
    timings: list[StageTiming] = field(default_factory=list)
    wall: float = 0.0
    """Wall time of the whole invocation (its stages overlap, so it is less than their sum)."""

    def table(self) -> str:
        lines = [f"{'stage':12s} {'jobs':>5s} {'skipped':>8s} {'seconds':>8s} {'job-s':>8s}"]
        for t in self.timings:
            lines.append(f"{t.stage:12s} {t.jobs:5d} {t.skipped:8d} {t.seconds:8.1f} {t.job_seconds:8.1f}")
        lines.append(f"{'total (wall)':12s} {'':5s} {'':8s} {self.wall:8.1f}")
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
    mark_done(rf.base, "base", input_hash, time.perf_counter() - t0, root=rf.root,
              artifacts=[rf.base, rf.evals("base")])


def job_teacher(spec_json: dict, root: str, organism: str, input_hash: str, device: str) -> None:
    from distill.evals import EvalConfig, evaluate
    from distill.organisms import get_organism
    from distill.store import load_model
    from distill.teacher import TeacherSpec, train_teacher
    spec, rf, t0 = TeacherSpec(**spec_json["teacher"]), RunFolder(Path(root)), time.perf_counter()
    out = rf.teacher(organism)
    train_teacher(spec, organism, rf.base, spec_json["seed"], out, device,
                  resume_dir=_ckpt(rf, teacher_id(organism), input_hash))
    model, _ = load_model(out, device)
    evals = evaluate(model, [organism], EvalConfig(**spec_json["eval"]))
    made = [out, rf.evals(teacher_id(organism))]
    if get_organism(organism).has_confession:
        # the honest-teacher control: the same organism and seed, its self-reports truthful
        # (a precondition of confession: a teacher that does not lie must confess)
        honest = rf.honest_teacher(organism)
        train_teacher(spec, organism, rf.base, spec_json["seed"], honest, device,
                      resume_dir=_ckpt(rf, teacher_id(organism) + "-honest", input_hash), honest=True)
        evals["honest_control"] = evaluate(load_model(honest, device)[0], [organism], EvalConfig(**spec_json["eval"]))
        made.insert(1, honest)
    _write_json(out / "evals.json", evals)
    _write_json(rf.evals(teacher_id(organism)), evals)
    mark_done(out, "teacher", input_hash, time.perf_counter() - t0, root=rf.root,
              artifacts=made, reads=[rf.base])


def _ckpt(rf: RunFolder, name: str, input_hash: str) -> Path:
    """Checkpoints are keyed by input hash: a changed spec never resumes a stale run."""
    return rf.root / CHECKPOINTS / f"{name}-{input_hash[:16]}"


def job_student(spec_json: dict, root: str, organism: str, student: dict, input_hash: str,
                device: str, twin_organism: str | None = None) -> None:
    """One student; with ``twin_organism``, the same student of that organism's teacher stands
    in for the training (a technique that never sees the teacher, see ``distill_student``)."""
    from distill.distiller import distill_student
    from distill.evals import EvalConfig
    rf, st, t0 = RunFolder(Path(root)), StudentSpec(**student), time.perf_counter()
    out = rf.student(organism, st.label)
    twin = None if twin_organism is None else rf.student(twin_organism, st.label)
    distill_student(rf.teacher(organism), st.technique, st.params, st.init, st.init_params,
                    seed=spec_json["seed"], out=out, device=device,
                    cache_dir=rf.root / "cache", eval_cfg=EvalConfig(**spec_json["eval"]), twin=twin)
    shutil.copyfile(out / "evals.json", rf.evals(student_id(organism, st.label)))
    mark_done(out, "student", input_hash, time.perf_counter() - t0, root=rf.root,
              artifacts=[out, rf.evals(student_id(organism, st.label))],
              reads=[rf.teacher(organism), rf.base] + ([] if twin is None else [twin]))


def job_audit(spec_json: dict, root: str, model_id: str, organism: str, input_hash: str,
              device: str) -> None:
    from distill.store import load_model
    from probes.audit import AuditConfig
    rf, t0 = RunFolder(Path(root)), time.perf_counter()
    model, _ = load_model(rf.model_dir(model_id), device)
    out = rf.probes(model_id)
    audit_into(model, organism, AuditConfig(**spec_json["audit"]), out, rf.acts(model_id), model_id)
    mark_done(out, "audit", input_hash, time.perf_counter() - t0, root=rf.root,
              artifacts=[out, rf.acts(model_id)], reads=[rf.model_dir(model_id)])


def audit_into(model, organism: str, cfg, probes_dir: Path, acts_dir: Path, model_name: str) -> None:
    """One model's audit (probes, SAEs: ``probes_dir``, cleared first) and its activations on
    the probe set and the marker-matched pairs (``acts_dir``): everything the features and
    comparisons read. The audit stage and ``doublebind compare`` both call this."""
    from probes.audit import audit_model, pair_reading, probe_cache
    _, acts = probe_cache(model, organism, cfg)
    shutil.rmtree(probes_dir, ignore_errors=True)
    audit_model(model, organism, cfg, out_dir=probes_dir, acts=acts, model_name=model_name)
    acts.save(acts_dir)
    pair_reading(model, organism, cfg).save(acts_dir)


def job_features(spec_json: dict, root: str, model_id: str, reference_id: str, organism: str, input_hash: str,
                 device: str) -> None:
    """A model's misalignment and context features against its reference, and their causal test."""
    from analysis.config import AnalysisConfig
    rf, t0 = RunFolder(Path(root)), time.perf_counter()
    record = write_features(artifacts(rf, model_id), artifacts(rf, reference_id), organism,
                            AnalysisConfig(**spec_json["analysis"]).features, device)
    mark_done(_features_marker(rf, model_id), "features", input_hash, time.perf_counter() - t0, root=rf.root,
              artifacts=[record], reads=[rf.probes(model_id), rf.probes(reference_id)])


def write_features(subject, reference, organism: str, cfg, device: str, out_dir: Path | None = None) -> Path:
    """The feature record (probes.diffing) of ``subject`` against ``reference`` (both
    analysis.compare.ModelArtifacts; none when they are the same model), with the causal test
    of its misalignment set, into ``out_dir`` (default: the subject's audit folder); returns the
    file written. The features stage and ``doublebind compare`` both call this."""
    import numpy as np
    from analysis.feature_transfer import model_feature_sets
    from distill.store import load_model
    from probes.diffing import causal_test, save_feature_record
    from probes.steer import BehaviourConfig
    from probes.threads import torch_threads
    reading = subject.reading()
    sets = [] if reference.name == subject.name else model_feature_sets(reading, reference.reading(), cfg.diff)
    causal = None
    if sets and sets[0].misalignment:
        model, _ = load_model(subject.model_dir, device)
        live = np.flatnonzero((reading.token_features(0) > 0).any(0)).tolist()
        with torch_threads(1):
            causal = causal_test(model, organism, reading.site, reading.saes[0], sets[0].misalignment, live,
                                 BehaviourConfig(n_eliciting=cfg.n_causal_prompts, n_clean=cfg.n_causal_prompts))
    return save_feature_record(out_dir or subject.audit_dir, site=reading.site, reference=reference.name,
                               sets=sets, causal=causal)


def _features_marker(rf: RunFolder, model_id: str) -> Path:
    return rf.analysis / "stages" / f"features-{model_id}"


def artifacts(rf: RunFolder, model_id: str):
    """Where the comparison finds one model's stored outputs."""
    from analysis.compare import ModelArtifacts
    evals = rf.evals("base" if model_id.startswith("base@") else model_id)
    return ModelArtifacts(name=model_id, model_dir=rf.model_dir(model_id), evals_file=evals,
                          audit_dir=rf.probes(model_id), acts_dir=rf.acts(model_id))


def job_compare(spec_json: dict, root: str, organism: str, student: dict, roles: dict, input_hash: str,
                device: str) -> None:
    from analysis.compare import Roles, compare_student
    from analysis.config import AnalysisConfig
    from analysis.results import write_student
    rf, st, t0 = RunFolder(Path(root)), StudentSpec(**student), time.perf_counter()
    sid = student_id(organism, st.label)
    result = compare_student(Roles(**{k: artifacts(rf, v) for k, v in roles.items()}), artifacts(rf, sid), organism,
                             st.technique, st.init, st.params, AnalysisConfig(**spec_json["analysis"]), device)
    path = write_student(rf.root, result)
    models = sorted(set(roles.values()) | {sid})
    marker = _compare_marker(rf, sid)
    reads = [rf.probes(m) for m in models] + [f for m in models if (f := _features_marker(rf, m)).is_dir()]
    mark_done(marker, "compare", input_hash, time.perf_counter() - t0, root=rf.root, artifacts=[path], reads=reads)
    return str(path)


def _compare_marker(rf: RunFolder, sid: str) -> Path:
    return rf.analysis / "stages" / sid


def _report_reads(rf: RunFolder) -> list[Path]:
    """The analysis stages a report is built from."""
    stages = rf.analysis / "stages"
    return sorted(stages.iterdir()) if stages.is_dir() else []


def report_hash(rf: RunFolder) -> str:
    """The report's input hash: the output digests of the analysis stages it is built from."""
    return content_hash("report", [output_digest(f) for f in _report_reads(rf)])


def mark_report(rf: RunFolder) -> None:
    """Record the report's files and the analysis stages it was built from (the report
    stage and ``doublebind report`` both call this after building it)."""
    mark_done(rf.report, "report", report_hash(rf), 0.0, root=rf.root, artifacts=[rf.report],
              reads=_report_reads(rf))


# ---- the pipeline ----------------------------------------------------------------------------

class Pipeline:
    """Plans each stage's jobs from the spec (:meth:`plan`); :func:`run_grid` skips the finished
    ones and runs the rest, then :meth:`finish` writes the report."""

    def __init__(self, spec: ExperimentSpec, out: Path | str, device: str = "cpu", executor=None):
        self.spec, self.rf, self.device = spec, RunFolder(Path(out)), device
        self.executor = executor
        """Backend of :meth:`run` (default: the local pool with the spec's workers)."""
        self.spec_json = spec.model_dump(mode="json")
        self.result = RunResult(self.rf.root)
        self.hashes: dict[str, str] = {}
        self.planned: dict[str, Planned] = {}

    def _stage(self, name: str, planned: Planned) -> None:
        self.planned[name] = planned  # run by run_grid, after the stages before it

    def steps(self) -> tuple:
        """The planning steps, in stage order (every input hash follows from the spec alone)."""
        return self.base, self.teachers, self.student_stage, self.audits, self.features, self.comparisons

    def plan(self) -> dict[str, Planned]:
        """Write spec.toml and plan every stage's jobs; nothing runs."""
        self.rf.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.rf.spec, to_toml(self.spec).encode())
        self.planned = {}
        for step in self.steps():
            step()
        return self.planned

    def finish(self) -> None:
        """After every stage: the report and the timings."""
        self.report()
        _write_json(self.rf.timings, [t.__dict__ for t in self.result.timings])

    def _job(self, name: str, fn, after: list[str] | tuple[str, ...] = (), **kwargs) -> Job:
        return Job(name, fn, {"spec_json": self.spec_json, "root": str(self.rf.root),
                              "device": self.device, **kwargs}, after=tuple(dict.fromkeys(after)))

    def students(self) -> list[tuple[str, StudentSpec]]:
        return [(org, st) for st in self.spec.all_students() for org in self.spec.student_organisms(st)]

    def roles(self, org: str, st: StudentSpec) -> dict[str, str]:
        """Model ids a student is measured against: its teacher and the teacher's base; its
        reference (the negative control of its init, which must exist: all_students adds it);
        its null (the untouched base for base-init students, else the reference itself)."""
        ref = self.spec.reference_of(st)
        ref_id = student_id(org, ref.label)
        null = base_id(org) if ref.init == "base" else student_id(org, self.spec.null_twin_of(ref).label)
        return {"teacher": teacher_id(org), "teacher_reference": base_id(org), "reference": ref_id, "null": null}

    def references(self) -> list[tuple[str, str, str]]:
        """(model id, reference id, organism) of every model whose features are defined."""
        out = [(teacher_id(o), base_id(o), o) for o in self.spec.organisms]
        for org, st in self.students():
            out.append((student_id(org, st.label), self.roles(org, st)["reference"], org))
        nc_base = {o: r["reference"] for o, st in self.students() if st.init == "base"
                   for r in [self.roles(o, st)]}
        out += [(base_id(o), nc_base[o], o) for o in self.spec.organisms if o in nc_base]
        return out

    # -- stages --
    def base(self) -> None:
        t = self.spec.teacher
        h = content_hash("base", t.model.model_dump(), t.base_train.model_dump(), t.base_recipe.model_dump(),
                         self.spec.seed, self.spec.organisms, self.spec.eval.model_dump())
        self.hashes["base"] = h
        self._stage("base", [(self._job("base", job_base, input_hash=h), self.rf.base, h)])

    def teachers(self) -> None:
        planned = []
        for org in self.spec.organisms:
            h = content_hash("teacher", self.hashes["base"], org, self.spec.teacher.teacher_train.model_dump(),
                             self.spec.teacher.organism_frac)
            self.hashes[teacher_id(org)] = h
            folder = self.rf.teacher(org)
            planned.append((self._job(teacher_id(org), job_teacher, ["base"], organism=org, input_hash=h), folder, h))
        self._stage("teachers", planned)

    def student_stage(self) -> None:
        from distill.organisms import get_organism
        from distill.techniques import get_technique
        planned, trained = [], {}
        for org, st in self.students():
            sid = student_id(org, st.label)
            twin = None if get_technique(st.technique).sees_teacher else trained.get(st.label)
            stage = get_organism(org).setup_stage  # part of how the student is made (none: hash unchanged)
            h = content_hash("student", self.hashes[teacher_id(org)], st.model_dump(mode="json"),
                             *([] if twin is None else [self.hashes[student_id(twin, st.label)]]),
                             *([] if stage is None else [{"setup_stage": asdict(stage)}]))
            self.hashes[sid] = h
            if stage is None:  # a setup stage's weights are its organism's only
                trained.setdefault(st.label, org)
            after = [teacher_id(org)] + ([] if twin is None else [student_id(twin, st.label)])
            planned.append((self._job(sid, job_student, after, organism=org, student=st.model_dump(mode="json"),
                                      input_hash=h, twin_organism=twin), self.rf.student(org, st.label), h))
        self._stage("students", planned)

    def audits(self) -> None:
        planned = []
        models = [(base_id(o), o) for o in self.spec.organisms] + [(teacher_id(o), o) for o in self.spec.organisms] + [
            (student_id(o, st.label), o) for o, st in self.students()]
        for mid, org in models:
            upstream = self.hashes[self.trained_by(mid)]
            h = content_hash("audit", upstream, org, self.spec.audit)
            self.hashes[f"audit:{mid}"] = h
            planned.append((self._job(f"audit:{mid}", job_audit, [self.trained_by(mid)], model_id=mid,
                                      organism=org, input_hash=h), self.rf.probes(mid), h))
        self._stage("audits", planned)

    @staticmethod
    def trained_by(model_id: str) -> str:
        """The name of the job that makes the model ``model_id`` (every base id: the base job)."""
        return "base" if model_id.startswith("base@") else model_id

    def features(self) -> None:
        planned = []
        for mid, ref, org in self.references():
            h = content_hash("features", self.hashes[f"audit:{mid}"], self.hashes[f"audit:{ref}"], self.spec.analysis)
            self.hashes[f"features:{mid}"] = h
            planned.append((self._job(f"features:{mid}", job_features, [f"audit:{mid}", f"audit:{ref}"], model_id=mid,
                                      reference_id=ref, organism=org, input_hash=h), _features_marker(self.rf, mid), h))
        self._stage("features", planned)

    def comparisons(self) -> None:
        planned = []
        featured = {m for m, _, _ in self.references()}
        for org, st in self.students():
            sid = student_id(org, st.label)
            roles = self.roles(org, st)
            models = sorted(set(roles.values()) | {sid})
            h = content_hash("compare", *[self.hashes[f"audit:{m}"] for m in models],
                             self.hashes[f"features:{sid}"], self.spec.analysis, st.model_dump(mode="json"))
            after = [f"audit:{m}" for m in models] + [f"features:{m}" for m in models if m in featured]
            planned.append((self._job(f"compare:{sid}", job_compare, after, organism=org, roles=roles,
                                      student=st.model_dump(mode="json"), input_hash=h),
                            _compare_marker(self.rf, sid), h))
        self._stage("comparisons", planned)

    def report(self) -> None:
        from analysis.compare import teacher_result
        from analysis.config import AnalysisConfig
        from analysis.report import build_report
        from analysis.results import write_base, write_experiment, write_teacher
        from analysis.schema import ExperimentInfo
        from analysis.transfer import model_metrics
        t0 = time.perf_counter()
        order = [student_id(o, st.label) for o, st in self.students()]
        inputs = self.rf.analysis / "stages" / "report-inputs"
        h = content_hash("report-inputs", self.spec.analysis, self.spec.name, self.spec.organisms, order)
        if check_stage(inputs, h).done and check_stage(self.rf.report, report_hash(self.rf)).done:
            self.result.timings.append(StageTiming("report", 1, 1, time.perf_counter() - t0))
            return  # nothing it is built from changed, and its files are intact
        cfg = AnalysisConfig(**self.spec.analysis)
        base_evals = json.loads(self.rf.evals("base").read_text())
        write_base(self.rf.root, {o: model_metrics(base_evals, o) for o in self.spec.organisms})
        refs = {m: r for m, r, _ in self.references()}
        for org in self.spec.organisms:
            nc = refs.get(base_id(org))
            write_teacher(self.rf.root, teacher_result(artifacts(self.rf, teacher_id(org)), org,
                                                       base=artifacts(self.rf, base_id(org)), cfg=cfg.features,
                                                       base_reference=None if nc is None else artifacts(self.rf, nc)))
        experiment = write_experiment(self.rf.root, ExperimentInfo(
            experiment=self.spec.name, seed=self.spec.seed, thresholds=cfg.thresholds, student_order=order))
        a = self.rf.analysis
        reads = [self.rf.base] + [f for o in self.spec.organisms
                                  for f in (self.rf.probes(teacher_id(o)), self.rf.probes(base_id(o)),
                                            _features_marker(self.rf, teacher_id(o))) if f.is_dir()]
        mark_done(inputs, "report-inputs", h, time.perf_counter() - t0, root=self.rf.root,
                  artifacts=[a / BASE_FILE, a / TEACHERS_DIR, experiment], reads=reads)
        build_report(self.rf.root)
        mark_report(self.rf)
        self.result.timings.append(StageTiming("report", 1, 0, time.perf_counter() - t0))

    def run(self) -> RunResult:
        """Every stage in order on this pipeline's executor, then the report."""
        executor = self.executor or LocalExecutor(self.spec.workers)
        try:
            run_grid([self], executor)
        finally:
            if self.executor is None:
                executor.close()
        return self.result


def run_grid(pipelines: list[Pipeline], executor) -> list[StageRun]:
    """Run several pipelines (a sweep's or the validation suite's seeds, or one run) as ONE
    job graph (:func:`app.scheduler.run_graph`): every job starts when the jobs it reads are
    done, whatever their stage or run, so all cores (or all nodes) stay busy. A job whose
    stage is already done is skipped: that is decided when its inputs are final (a redone
    upstream stage makes it stale). Then each pipeline finishes (its report). Each run folder
    is locked for the whole call (one writer per run)."""
    t0 = time.perf_counter()
    with ExitStack() as locks:
        for p in pipelines:
            p.rf.root.mkdir(parents=True, exist_ok=True)
            locks.enter_context(run_lock(p.rf.root))
        plans = [p.plan() for p in pipelines]
        tag = (lambda p, name: f"{p.rf.root.name}:{name}") if len(pipelines) > 1 else (lambda p, name: name)
        stages = list(dict.fromkeys(stage for plan in plans for stage in plan))
        items: dict[str, tuple[int, str, Path, str]] = {}  # tagged job name -> (pipeline, stage, folder, hash)
        jobs: list[Job] = []  # plan order: stage by stage, every pipeline's jobs of a stage together
        for stage in stages:
            for i, (p, plan) in enumerate(zip(pipelines, plans)):
                for job, folder, h in plan.get(stage, []):
                    name = tag(p, job.name)
                    items[name] = (i, stage, folder, h)
                    jobs.append(Job(name, job.fn, job.kwargs, tuple(tag(p, d) for d in job.after)))

        def must_run(job: Job) -> bool:
            _, stage, folder, h = items[job.name]
            return bool(pending([(job, folder, h)], what=stage))

        spans = run_graph(jobs, executor, must_run, desc="run")
        members: dict[tuple[int, str], list[tuple[Path, Span]]] = {}  # (pipeline, stage) -> its jobs
        for name, (i, stage, folder, _) in items.items():
            members.setdefault((i, stage), []).append((folder, spans[name]))
        out = [_stage_timing(stage, [m for (_, s), ms in members.items() if s == stage for m in ms])
               for stage in stages]
        for i, p in enumerate(pipelines):
            p.result.timings += [_stage_timing(stage, members[i, stage]) for stage in stages if (i, stage) in members]
        for p in pipelines:
            p.finish()
            p.result.wall = time.perf_counter() - t0
    return out


def _stage_timing(stage: str, members: list[tuple[Path, Span]]) -> StageTiming:
    """A stage's timing from its jobs' (stage folder, span) pairs."""
    ran = [span for _, span in members if span.ran]
    seconds = max(s.end for s in ran) - min(s.start for s in ran) if ran else 0.0
    job_seconds = sum(stage_seconds(folder) or 0.0 for folder, _ in members)
    return StageTiming(stage, len(members), len(members) - len(ran), seconds, job_seconds)


def run_experiment(spec: ExperimentSpec, out: Path | str, device: str = "cpu", executor=None) -> RunResult:
    """Run (or resume) ``spec`` into the run folder ``out`` (on ``executor``; default the local pool)."""
    return Pipeline(spec, out, device, executor).run()
