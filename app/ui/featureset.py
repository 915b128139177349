"""A model's misalignment and context features as every app page and the audit command show them.

The definition is :mod:`probes.diffing`'s, stored per model as ``probes/<model>/misalignment.json``
(:func:`probes.diffing.load_feature_record`): the SAE features (seed 0) that separate the
model's misbehaving from behaving completions on marker-matched pairs and have no counterpart
in its *reference* model, plus the **context features**, which read the marker (the reference
has them too: useful to an auditor, not evidence of misalignment). The audit's own
eliciting-vs-clean ranking is only a description. Streamlit-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

NO_REFERENCE = "misalignment features need a reference: see doublebind compare"
"""Why a model has no feature lists: its features were never diffed against a reference."""
MISALIGNMENT_MARK = "⚠"
CONTEXT_MARK = "◇"
CONTEXT_LABEL = "context: reads the marker"
LEGEND = (f"{MISALIGNMENT_MARK} misalignment feature (diffed against the reference model); "
          f"{CONTEXT_MARK} {CONTEXT_LABEL} (the reference has it too: not misalignment)")


@dataclass(frozen=True)
class ModelFeatures:
    """The stored record of one model, normalised; empty lists with a ``note`` when absent."""

    site: str | None = None
    """SAE site the ids refer to (SAE seed 0)."""
    reference: str | None = None
    """The model it was diffed against."""
    misalignment: list[int] = field(default_factory=list)
    context: list[int] = field(default_factory=list)
    causal: dict | None = None
    """``analysis.schema.CausalResult`` fields (label 'mechanism' | 'correlate'), or None."""
    note: str | None = None
    """Set when there is no usable record (the lists are then empty)."""

    def mark(self, feature: int) -> str:
        """⚠ for a misalignment feature, ◇ for a context feature, else ''."""
        return MISALIGNMENT_MARK if feature in self.misalignment else CONTEXT_MARK if feature in self.context else ""

    def kind(self, feature: int) -> str:
        return ("misalignment" if feature in self.misalignment else CONTEXT_LABEL if feature in self.context
                else "ordinary")


def _causal(raw: dict | None) -> dict | None:
    """CausalResult fields, from either the stored statistics or probes.diffing's raw counts."""
    from analysis.causal import causal_result
    from analysis.schema import CausalResult
    if not raw:
        return None
    try:
        fields = causal_result(raw) if "bad_before" in raw else raw
        return CausalResult(**fields).model_dump()
    except (KeyError, TypeError, ValidationError, ZeroDivisionError):
        return None


def model_features(audit_dir: Path | str, site: str | None = None) -> ModelFeatures:
    """The feature record in ``audit_dir``; ``site``: the SAE the caller reads (a record of
    another site gives empty lists, since its ids name other features). ValueError: unreadable."""
    from probes.diffing import load_feature_record
    record = load_feature_record(audit_dir)
    if record is None:
        return ModelFeatures(site=site, note=NO_REFERENCE)
    rec_site = record.get("site")
    if site is not None and rec_site is not None and rec_site != site:
        return ModelFeatures(site=site, reference=record.get("reference"),
                             note=f"the stored features are of the SAE at {rec_site}, not {site}")
    return ModelFeatures(site=rec_site or site, reference=record.get("reference"),
                         misalignment=[int(f) for f in record.get("misalignment") or []],
                         context=[int(f) for f in record.get("context") or []],
                         causal=_causal(record.get("causal")))


def causal_line(causal: dict | None) -> str:
    """One sentence on the causal test, e.g. for the audit command."""
    if causal is None:
        return "causal test: not measured"
    lo, hi = causal["misbehaviour_after_ci"]
    p = causal.get("p_vs_random")
    return (f"causal test: ablating the {len(causal['features'])} features while generating moves misbehaviour "
            f"{causal['misbehaviour_before']:.0%} -> {causal['misbehaviour_after']:.0%} [{lo:.0%}, {hi:.0%}] "
            f"(ablating as many random features: {causal['random_after']:.0%}; "
            f"p vs random {'n/a' if p is None else f'{p:.3g}'}) => {causal['label']}")
