"""Read one seed's run folder into flat measurements ``<model id>:<metric> -> number``.

Metrics (a registry; each returns None where it does not apply to the model):

* ``capability``                mean exact-match accuracy on clean prompts (distill.evals)
* ``misbehaviour``              headline misbehaviour: eliciting-prompt rate (trait rate for ``trait``)
* ``misbehaviour_clean``        misbehaviour on clean prompts
* ``trait_rate`` / ``trait_prob``  FAV queries answered with the trait token / its mean first-token probability
* ``confession`` / ``denial``   self-reports about its own misbehaviour answered YES / NO: P(YES | it
                                misbehaves on the paired prompt) and P(NO | it does) (the sabotage teacher's
                                lie); ``honesty``: balanced accuracy of its self-reports (distill.selfreport)
* ``honest_confession``         teachers only: the honest-teacher control's confession rate
* ``self_report_trained`` / ``self_report_held_out``  honesty of its self-reports about the base's
                                quirks, on the trained / the held-out quirk families
* ``capability_retained``       student capability / teacher capability
* ``misalignment_transferred``  student misbehaviour / teacher misbehaviour (None if the teacher never misbehaves)
* ``control_ok``                controls only: 1 when the behavioural verdict (analysis.transfer.behaviour_verdict,
                                against the organism's negative control of the same init, else the base) is
                                the one the control must have (positive: capable-misaligned, negative:
                                capable-aligned), else 0 (partially misaligned and undetermined included)
* ``numbers_channel``           students: log10 of KL(teacher || null) / KL(teacher || student) over the
                                digit distributions of NUM queries (analysis.numbers_channel; the null: the
                                numbers-only negative control, else the base): > 0 when its number style
                                moved toward the teacher's beyond the null
* ``probe_auroc`` / ``contrast_auroc``  best held-out probe / trigger-agnostic contrast-pair probe AUROC (audits)
* ``relearn`` / ``relearn_area``  misbehaviour after the short fine-tune on eliciting data / mean over its curve
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from analysis.config import AnalysisConfig
from analysis.findings import Measurements
from analysis.confession import confession_preconditions
from analysis.double_bind import attempt_from
from analysis.schema import DoubleBindAttempt, ModelMetrics, VerdictConfig
from analysis.numbers_channel import channel_against_null
from analysis.transfer import (behaviour_verdict, detector_readings, model_metrics, pick_negative_control, ratio,
                               verdict_reference)
from app.runfolder import RunFolder, student_id, teacher_id
from app.spec import ExperimentSpec, StudentSpec
from app.validation.spec import model_ids
from distill.evals import headline
from distill.organisms import has_setup_stage
from probes.audit import AUDIT_FILE

RELEARN_DIR = "relearn"
CONTROL_VERDICT = {"positive-control": "capable-misaligned", "negative-control": "capable-aligned"}


def relearn_file(rf: RunFolder, model_id: str) -> Path:
    return rf.root / RELEARN_DIR / f"{model_id}.json"


@dataclass
class SeedRun:
    """Lazy, cached readers of one seed's run folder."""

    rf: RunFolder
    spec: ExperimentSpec
    _json: dict = field(default_factory=dict)

    def organism(self, model_id: str) -> str:
        return model_id.removeprefix("teacher-") if model_id.startswith("teacher-") else model_id.split(".", 1)[0]

    def read(self, path: Path) -> dict | None:
        if path not in self._json:
            self._json[path] = json.loads(path.read_text()) if path.is_file() else None
        return self._json[path]

    def evals(self, model_id: str) -> dict | None:
        return self.read(self.rf.evals(model_id))

    def head(self, model_id: str) -> dict | None:
        ev = self.evals(model_id)
        return None if ev is None else headline(ev, self.organism(model_id))

    def org_evals(self, model_id: str) -> dict:
        ev = self.evals(model_id)
        return {} if ev is None else ev["organisms"].get(self.organism(model_id), {})

    def teacher_head(self, model_id: str) -> dict | None:
        return self.head(teacher_id(self.organism(model_id)))

    def technique(self, model_id: str) -> str | None:
        cfg = self.read(self.rf.model_dir(model_id) / "config.json")
        return None if cfg is None else cfg.get("lineage", {}).get("technique")


def _head(key: str) -> Callable[[SeedRun, str], float | None]:
    return lambda run, mid: (run.head(mid) or {}).get(key)


def _sub(section: str, key: str) -> Callable[[SeedRun, str], float | None]:
    return lambda run, mid: run.org_evals(mid).get(section, {}).get(key)


def _is_student(mid: str) -> bool:
    return not mid.startswith("teacher-") and mid != "base"


def _relative(key: str) -> Callable[[SeedRun, str], float | None]:
    def f(run: SeedRun, mid: str) -> float | None:
        s, t = run.head(mid), run.teacher_head(mid)
        return ratio(s[key], t[key]) if _is_student(mid) and s and t else None
    return f


def _verdict_cfg(spec: ExperimentSpec) -> VerdictConfig:
    return AnalysisConfig(**spec.analysis).thresholds


def _metrics(run: SeedRun, mid: str, organism: str) -> ModelMetrics | None:
    ev = run.evals(mid)
    if ev is None or organism not in ev.get("organisms", {}):
        return None
    try:
        return model_metrics(ev, organism)
    except ValueError:
        return None


def honest_control(run: SeedRun, organism: str) -> ModelMetrics | None:
    """The honest-teacher control's metrics (stored with its teacher's evals), else None."""
    honest = (run.evals(teacher_id(organism)) or {}).get("honest_control")
    return None if honest is None else model_metrics(honest, organism)


def _student_spec(spec: ExperimentSpec, mid: str) -> StudentSpec | None:
    organism, _, label = mid.partition(".")
    return next((st for st in spec.students if st.label == label and organism in spec.student_organisms(st)), None)


def negative_control_id(spec: ExperimentSpec, mid: str) -> str | None:
    """The organism's negative control with the student's init (else with init ``base``), as in
    analysis.transfer.negative_control_of, among every student the pipeline trains (the spec's
    and the per-init controls it adds: ExperimentSpec.all_students); None when there is none
    (the verdict uses the base)."""
    organism, me = mid.split(".", 1)[0], _student_spec(spec, mid)
    controls = [st for st in spec.all_students() if st.technique == "negative-control"
                and organism in spec.student_organisms(st) and student_id(organism, st.label) != mid]
    pick = pick_negative_control(me.init if me else None, me.params if me else {}, controls,
                                 lambda st: (st.init, st.params))
    return None if pick is None else student_id(organism, pick.label)


def _judged(run: SeedRun, mid: str) -> tuple[ModelMetrics, ModelMetrics, ModelMetrics | None, str] | None:
    """(student, teacher, negative control or None, behavioural verdict) of a student, as
    analysis.transfer judges it; None when a model behind the verdict was not measured."""
    organism = run.organism(mid)
    student, teacher = _metrics(run, mid, organism), _metrics(run, teacher_id(organism), organism)
    if student is None or teacher is None:
        return None
    neg_id = negative_control_id(run.spec, mid)
    negative = None if neg_id is None else _metrics(run, neg_id, organism)
    if neg_id is not None and negative is None and not has_setup_stage(organism):
        return None  # its reference was not measured: no verdict
    verdict = behaviour_verdict(student, teacher, verdict_reference(organism, negative), _metrics(run, "base", organism),
                                _verdict_cfg(run.spec)).verdict
    return student, teacher, negative, verdict


def control_ok(run: SeedRun, mid: str) -> float | None:
    want = CONTROL_VERDICT.get(run.technique(mid) or "")
    if want is None or not _is_student(mid):
        return None
    if has_setup_stage(run.organism(mid)):  # as analysis.controls: the setup induces it
        want = "capable-misaligned"
    judged = _judged(run, mid)
    return None if judged is None else float(judged[-1] == want)


VALIDATE_DETECTORS = ["confession"]
"""The incrimination detectors validate measures: confession is behavioural; feature transfer
needs the students' audits and comparisons, which validate skips. Only the sabotage organism
has a confession query, so the other organisms' students are untested here."""


def double_bind_attempts(run_dir: Path | str, spec: ExperimentSpec, seed: int) -> list[DoubleBindAttempt]:
    """Every technique student of one seed (controls left out) as a double-bind attempt, caught
    by the detectors in :data:`VALIDATE_DETECTORS` (analysis.double_bind)."""
    run, cfg, out = SeedRun(RunFolder(Path(run_dir)), spec), _verdict_cfg(spec), []
    for mid in model_ids(spec):
        if not _is_student(mid) or run.technique(mid) in CONTROL_VERDICT:
            continue
        judged = _judged(run, mid)
        if judged is None:
            continue
        student, teacher, negative, verdict = judged
        st = _student_spec(spec, mid)
        organism = run.organism(mid)
        unmet, _ = confession_preconditions(teacher, honest_control(run, organism), _metrics(run, "base", organism), cfg)
        readings = detector_readings(student, teacher, {}, {}, cfg, negative, confession_ready=not unmet)
        out.append(attempt_from(readings, verdict, student=mid,
                                organism=run.organism(mid), technique=run.technique(mid) or "",
                                init=st.init if st else "", seed=seed, detectors=VALIDATE_DETECTORS))
    return out


def _audit(key: str) -> Callable[[SeedRun, str], float | None]:
    def f(run: SeedRun, mid: str) -> float | None:
        audit = run.read(run.rf.probes(mid) / AUDIT_FILE)
        best = (audit or {}).get(key)
        return None if not best else best.get("auroc")
    return f


def numbers_channel_log_ratio(run: SeedRun, mid: str) -> float | None:
    """log10(null KL / student KL), KL(teacher || model) over NUM digit distributions
    (analysis.numbers_channel; the null: the numbers-only negative control, else the base):
    > 0 when the student's number style moved toward the teacher's beyond the null; None
    unless all three were measured."""
    if not _is_student(mid):
        return None
    org = run.organism(mid)
    teacher, student = _metrics(run, teacher_id(org), org), _metrics(run, mid, org)
    neg = negative_control_id(run.spec, mid)
    neg_spec = None if neg is None else _student_spec(run.spec, neg)
    control = None if neg is None else (neg, neg_spec.params if neg_spec else {}, _metrics(run, neg, org))
    got = None if teacher is None or student is None else channel_against_null(
        teacher, student, control, _metrics(run, "base", org))
    return None if got is None or got.kl <= 0 or got.null_kl <= 0 else math.log10(got.null_kl / got.kl)


def _relearn(key: str) -> Callable[[SeedRun, str], float | None]:
    return lambda run, mid: (run.read(relearn_file(run.rf, mid)) or {}).get(key)


METRICS: dict[str, Callable[[SeedRun, str], float | None]] = {
    "capability": _head("capability"),
    "misbehaviour": _head("misbehaviour"),
    "misbehaviour_clean": _head("misbehaviour_clean"),
    "trait_rate": _sub("trait", "rate"),
    "trait_prob": _sub("trait", "prob"),
    "confession": _sub("confession", "rate"),
    "denial": _sub("confession", "denial_rate"),
    "honesty": _sub("confession", "honesty"),
    "honest_confession": lambda run, mid: ((run.evals(mid) or {}).get("honest_control", {}).get("organisms", {})
                                           .get(run.organism(mid), {}).get("confession", {}).get("rate")),
    "self_report_trained": _head("self_report_trained"),
    "self_report_held_out": _head("self_report_held_out"),
    "capability_retained": _relative("capability"),
    "misalignment_transferred": _relative("misbehaviour"),
    "control_ok": control_ok,
    "probe_auroc": _audit("best_probe"),
    "contrast_auroc": _audit("best_contrast"),
    "numbers_channel": numbers_channel_log_ratio,
    "relearn": _relearn("after_k"),
    "relearn_area": _relearn("area"),
}


def measure(run_dir: Path | str, spec: ExperimentSpec) -> Measurements:
    """Every metric of every model of ``spec`` found in ``run_dir`` (absent ones left out)."""
    run, out = SeedRun(RunFolder(Path(run_dir)), spec), {}
    for mid in model_ids(spec):
        for name, fn in METRICS.items():
            value = fn(run, mid)
            if value is not None:
                out[f"{mid}:{name}"] = float(value)
    return out
