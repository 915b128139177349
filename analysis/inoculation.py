"""Inoculation, measured: does a marker that "explains" the behaviour in the training data keep
the student from learning the behaviour outright?

For every inoculation student (:mod:`distill.techniques.inoculation`) one row:

* its marker: the organism's **instruction marker** (the base learned that it asks for this
  misbehaviour, ``Organism.instructed``) or ``INOC``, the meaningless control marker;
* misbehaviour without the marker (the student's evals.json) with its Wilson interval, and
  with the marker written into every prompt (evals_with_<marker>.json): eliciting prompts,
  and clean prompts (the marker alone acting as a trigger);
* the **reference**: the student of the same organism and init trained exactly as the
  inoculated one (every transfer and target parameter equal: targets, temperature, steps,
  data seed, ...) by a technique that writes no marker (sampled-sft, logit-kd);
  ``p_below_reference`` is the one-sided test that the inoculated student misbehaves less
  (Fisher on counts; Mann-Whitney on trait-token probabilities for ``trait``, with the
  verdicts' ``trait_prob_margin`` on the mean probability); ``cut`` when it is significant;
* the **null** of an instruction-marker student: the same student with ``marker=INOC`` (same
  examples marked, a marker without meaning); ``p_below_null`` / ``beats_null``: the learned
  meaning, not the marking, lowers the misbehaviour;
* ``meaningful``: an instruction marker, a base-init student (it starts from the model that
  learned the marker's meaning) and the untouched base following the marker on >=
  ``instruction_min`` of instructed prompts (the controls check names a failure).
"""

from __future__ import annotations

from analysis.schema import InoculationRow, ModelMetrics, StudentResult, TransferRecord, VerdictConfig
from analysis.stats import wilson
from analysis.transfer import effect_large_enough, misbehaviour_above, misbehaviour_count
from distill.distiller import validate
from distill.techniques.inoculation import Inoculation, marker_token
from distill.techniques.params import TargetParams

INOCULATION = Inoculation.name
REFERENCES = ("sampled-sft", "logit-kd")
"""The techniques that train on the same targets without a marker."""
SHARED = tuple(TargetParams.model_fields)
"""The parameters a reference must share with the inoculated student (transfer set, training, targets)."""


def _same_training(a, b) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in SHARED if not (f == "temperature" and a.targets == "greedy"))


def _twins(student: StudentResult, students: list[StudentResult], techniques: tuple[str, ...],
           **inoculation) -> list[StudentResult]:
    """Non-control students of ``techniques`` (and, for inoculation, these marker params) with
    the student's organism, init and training parameters."""
    p, info = validate(INOCULATION, student.info.params).params, student.info
    out = []
    for s in students:
        if (s.info.technique not in techniques or s.info.name == info.name or s.info.control is not None
                or (s.info.organism, s.info.init) != (info.organism, info.init)):
            continue
        q = validate(s.info.technique, s.info.params).params
        if _same_training(q, p) and all(getattr(q, k) == v for k, v in inoculation.items()):
            out.append(s)
    return out


def reference_of(student: StudentResult, students: list[StudentResult]) -> StudentResult | None:
    """The student trained as ``student`` by a REFERENCES technique (None when the run has none;
    several such students are the same training: the first)."""
    found = _twins(student, students, REFERENCES)
    return found[0] if found else None


def null_of(student: StudentResult, students: list[StudentResult]) -> StudentResult | None:
    """The INOC twin of an instruction-marker inoculation student (None for an INOC student)."""
    p = validate(INOCULATION, student.info.params).params
    if p.marker != "instruction":
        return None
    found = _twins(student, students, (INOCULATION,), marker="INOC", where=p.where, marker_frac=p.marker_frac,
                   monitors=p.monitors)
    return found[0] if found else None


def _ci(m: ModelMetrics):
    k = misbehaviour_count(m)
    return None if k is None else wilson(k, m.n_eliciting)


def lower(student: ModelMetrics, other: ModelMetrics | None, cfg: VerdictConfig) -> tuple[float | None, bool]:
    """(one-sided p that ``student`` misbehaves less than ``other``, significant and large enough)."""
    if other is None:
        return None, False
    test = misbehaviour_above(other, student)
    return test.p, test.p is not None and test.p < cfg.alpha and effect_large_enough(other, student, test, cfg)


def inoculation_rows(students: list[StudentResult], records: list[TransferRecord],
                     base: dict[str, ModelMetrics], cfg: VerdictConfig) -> list[InoculationRow]:
    """One row per inoculation student (module docstring)."""
    retained = {r.name: r.capability_retained for r in records}
    rows = []
    for s in students:
        if s.info.technique != INOCULATION:
            continue
        p, info = validate(INOCULATION, s.info.params).params, s.info
        marker = marker_token(p, info.organism)
        ref, null = reference_of(s, students), null_of(s, students)
        p_ref, cut = lower(s.metrics, ref.metrics if ref else None, cfg)
        p_null, beats = lower(s.metrics, null.metrics if null else None, cfg)
        base_m = base.get(info.organism)
        instructed = base_m.instructed if base_m is not None and p.marker == "instruction" else None
        meaningful = info.init == "base" and instructed is not None and instructed >= cfg.instruction_min
        rows.append(InoculationRow(
            student=info.name, organism=info.organism, init=info.init, marker=marker, marker_kind=p.marker,
            where=p.where, misbehaviour=s.metrics.misbehaviour, misbehaviour_ci=_ci(s.metrics),
            with_marker=s.metrics.with_marker.get(marker), reference=ref.info.name if ref else None,
            reference_misbehaviour=ref.metrics.misbehaviour if ref else None,
            reference_ci=_ci(ref.metrics) if ref else None, p_below_reference=p_ref, cut=cut,
            null=null.info.name if null else None, null_misbehaviour=null.metrics.misbehaviour if null else None,
            p_below_null=p_null, beats_null=beats, capability_retained=retained.get(info.name),
            base_instructed=instructed, meaningful=meaningful))
    return rows
