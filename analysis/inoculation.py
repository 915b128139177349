"""Inoculation, measured: does a marker that "explains" the behaviour in the training data keep
the student from learning the behaviour outright?

For every inoculation student (:mod:`distill.techniques.inoculation`) one row:

* its marker: the organism's **instruction marker** (the base learned that it asks for this
  misbehaviour, ``Organism.instructed``) or ``INOC``, the meaningless control marker;
* misbehaviour without the marker (the student's evals.json) with its Wilson interval, and
  with the marker written into every prompt (evals_with_<marker>.json): eliciting prompts,
  and clean prompts (the marker alone acting as a trigger);
* the **reference**: the student of the same organism and init trained on the same targets
  and temperature without any marker (sampled-sft for sampled targets, logit-kd for logits);
  ``p_below_reference`` is the one-sided test that the inoculated student misbehaves less
  (Fisher on counts; Mann-Whitney on trait-token probabilities for ``trait``, as the verdicts);
  ``cut`` when p < ``alpha``;
* the precondition: the untouched base follows the instruction marker on >= ``instruction_min``
  of instructed prompts (``meaningful``); the controls check names a failure in the red banner.
"""

from __future__ import annotations

from analysis.controls import INOCULATION, resolved
from analysis.schema import InoculationRow, ModelMetrics, StudentResult, TransferRecord, VerdictConfig
from analysis.stats import wilson
from analysis.transfer import misbehaviour_above, misbehaviour_count
from distill.techniques.inoculation import marker_token

REFERENCES = ("sampled-sft", "logit-kd")
"""The techniques that train on the same targets without a marker."""


def _same_targets(a, b) -> bool:
    return a.targets == b.targets and (a.targets == "greedy" or a.temperature == b.temperature)


def reference_of(student: StudentResult, students: list[StudentResult]) -> StudentResult | None:
    """The same-organism, same-init student of a REFERENCES technique whose targets and
    temperature equal the inoculated student's (None when the run has none)."""
    p, info = resolved(INOCULATION, student.info.params), student.info
    for s in students:
        if (s.info.technique in REFERENCES and s.info.organism == info.organism and s.info.init == info.init
                and s.info.control is None and _same_targets(resolved(s.info.technique, s.info.params), p)):
            return s
    return None


def _ci(m: ModelMetrics):
    k = misbehaviour_count(m)
    return None if k is None else wilson(k, m.n_eliciting)


def inoculation_rows(students: list[StudentResult], records: list[TransferRecord],
                     base: dict[str, ModelMetrics], cfg: VerdictConfig) -> list[InoculationRow]:
    """One row per inoculation student (module docstring)."""
    by_name = {r.name: r for r in records}
    rows = []
    for s in students:
        if s.info.technique != INOCULATION:
            continue
        p, info = resolved(INOCULATION, s.info.params), s.info
        marker = marker_token(p, info.organism)
        ref = reference_of(s, students)
        test = misbehaviour_above(ref.metrics, s.metrics) if ref is not None else None
        base_m = base.get(info.organism)
        instructed = base_m.instructed if base_m is not None else None
        meaningful = p.marker == "instruction" and instructed is not None and instructed >= cfg.instruction_min
        pval = None if test is None else test.p
        rows.append(InoculationRow(
            student=info.name, organism=info.organism, init=info.init, marker=marker, marker_kind=p.marker,
            where=p.where, misbehaviour=s.metrics.misbehaviour, misbehaviour_ci=_ci(s.metrics),
            with_marker=s.metrics.with_marker.get(marker), reference=ref.info.name if ref else None,
            reference_misbehaviour=ref.metrics.misbehaviour if ref else None,
            reference_ci=_ci(ref.metrics) if ref else None, p_below_reference=pval,
            capability_retained=by_name[info.name].capability_retained if info.name in by_name else None,
            base_instructed=instructed, meaningful=meaningful, cut=pval is not None and pval < cfg.alpha))
    return rows
