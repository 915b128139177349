"""Scientific findings over seeds: a typed claim, its per-seed metric, mean, 95% interval, verdict.

A :class:`FindingDef` states one qualitative result from the literature as a number that
can be checked: an *operation* over named measurements of one seed (``terms``, keys such as
``trait.logit-kd:trait_prob``), an expected *direction* and a *threshold*. Per seed the
operation gives one value x_s; over n seeds

    mean = (1/n) sum_s x_s,   sd = sample standard deviation (ddof = 1),
    95% interval = mean ± t_{0.975, n-1} * sd / sqrt(n)          (Student t, scipy.stats.t)

(undefined, reported as None, for n = 1). The verdict is judged on the mean (or, for claims
that must hold in every seed, ``judge_on = "worst"``: on the worst seed): PASS when
``mean > threshold`` (direction ``greater``), ``mean >= threshold`` (``at_least``),
``mean < threshold`` (``less``) or ``mean <= threshold`` (``at_most``); when a measurement
is missing in any seed the finding is MISSING. Separately the result says
whether the whole interval lies on the expected side of the threshold (``interval_clear``)
and, for differences and slopes, whether it excludes zero.

Operations (x = the value of a term in one seed):

* ``value``       x_1
* ``difference``  x_1 - x_2
* ``ratio``       x_1 / x_2                      (None when x_2 == 0)
* ``log_ratio``   log10(x_1 / x_2)               (None unless both > 0): "k times more" on a
                  log scale, so one seed with a tiny denominator cannot dominate the mean
* ``min`` / ``max`` / ``mean``  over all terms
* ``slope``       ordinary least-squares slope of x_i against ``xs[i]`` (scipy.stats.linregress)

This module knows nothing about run folders: the app measures, this module judges.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from analysis.schema import DoubleBind

FINDINGS_FORMAT = "doublebind-findings/1"
CONFIDENCE = 0.95

Op = Literal["value", "difference", "ratio", "log_ratio", "min", "max", "mean", "slope"]
Direction = Literal["greater", "at_least", "less", "at_most"]
Status = Literal["PASS", "FAIL", "MISSING"]
Measurements = dict[str, float | None]
"""One seed's measurements: ``<model id>:<metric>`` -> number (None: not measured)."""

_N_TERMS = {"value": (1, 1), "difference": (2, 2), "ratio": (2, 2), "log_ratio": (2, 2), "min": (1, None),
            "max": (1, None), "mean": (1, None), "slope": (2, None)}


class FindingDef(BaseModel):
    """One claim, stated as a checkable number."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    id: str = Field(pattern=r"^[0-9]+[a-z]?$")
    """Short id, e.g. ``1a`` (finding 1, first measure)."""
    title: str
    """What is being checked, in a few words."""
    claim: str
    """The expected result in words (shown next to the verdict)."""
    source: str
    """Where the qualitative result comes from (paper / anchor)."""
    op: Op
    """How the terms of one seed combine into the finding's value (see module docstring)."""
    terms: tuple[str, ...] = Field(min_length=1)
    """Measurement keys ``<model id>:<metric>``, in the operation's order."""
    xs: tuple[float, ...] | None = None
    """x coordinate of each term (``slope`` only), e.g. the noise share alpha."""
    direction: Direction
    """PASS when the mean is greater than (at least, less than, at most) the threshold."""
    threshold: float
    """The bar the mean must clear at default settings."""
    quick_threshold: float | None = None
    """A looser bar for ``--quick`` runs (tiny models, few steps); None: the same bar."""
    judge_on: Literal["mean", "worst"] = "mean"
    """mean: the mean over seeds must clear the bar; worst: every seed must ("always")."""
    unit: str = ""
    """Unit or meaning of the value (shown in tables)."""
    note: str = ""
    """Background: what is known about this measure at doublebind's scale (shown in the report)."""

    @model_validator(mode="after")
    def _shape(self) -> "FindingDef":
        lo, hi = _N_TERMS[self.op]
        n = len(self.terms)
        if n < lo or (hi is not None and n > hi):
            want = f"exactly {lo}" if lo == hi else f"at least {lo}"
            raise ValueError(f"finding {self.id}: op {self.op!r} takes {want} term(s), got {n}")
        if (self.op == "slope") != (self.xs is not None):
            raise ValueError(f"finding {self.id}: 'xs' is required for op 'slope' and only for it")
        if self.xs is not None and len(self.xs) != n:
            raise ValueError(f"finding {self.id}: 'xs' has {len(self.xs)} values for {n} terms")
        if self.xs is not None and len(set(self.xs)) < 2:
            raise ValueError(f"finding {self.id}: 'xs' needs at least two distinct values")
        return self

    def bar(self, quick: bool = False) -> float:
        return self.quick_threshold if quick and self.quick_threshold is not None else self.threshold

    @property
    def is_contrast(self) -> bool:
        """A difference or slope: zero means 'no effect'."""
        return self.op in ("difference", "slope", "log_ratio")


class Interval(NamedTuple):
    mean: float
    low: float | None
    high: float | None
    """Bounds of the 95% interval; None when undefined (one seed)."""
    sd: float | None
    n: int


def mean_interval(values: list[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean and two-sided Student-t interval: mean ± t_{(1+c)/2, n-1} * sd / sqrt(n)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_interval: no values")
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, None, None, None, 1)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * sd / math.sqrt(x.size)
    return Interval(mean, mean - half, mean + half, sd, int(x.size))


def finding_value(d: FindingDef, m: Measurements) -> float | None:
    """The finding's value in one seed (None when a term is missing or a ratio divides by 0)."""
    xs = [m.get(t) for t in d.terms]
    if any(x is None or not math.isfinite(x) for x in xs):
        return None
    if d.op == "value":
        return xs[0]
    if d.op == "difference":
        return xs[0] - xs[1]
    if d.op == "ratio":
        return None if xs[1] == 0 else xs[0] / xs[1]
    if d.op == "log_ratio":
        return math.log10(xs[0] / xs[1]) if xs[0] > 0 and xs[1] > 0 else None
    if d.op == "slope":
        return float(stats.linregress(np.asarray(d.xs, dtype=float), np.asarray(xs, dtype=float)).slope)
    return float({"min": np.min, "max": np.max, "mean": np.mean}[d.op](xs))


class TermSummary(BaseModel):
    """One measurement behind a finding, over seeds."""

    model_config = ConfigDict(extra="forbid")

    key: str
    values: list[float | None]
    mean: float | None
    low: float | None
    high: float | None


class FindingResult(BaseModel):
    """A finding judged over seeds."""

    model_config = ConfigDict(extra="forbid")

    definition: FindingDef
    threshold: float
    """The bar applied (the quick bar in quick runs)."""
    values: list[float | None]
    """The finding's value per seed (seed order)."""
    mean: float | None
    low: float | None
    high: float | None
    sd: float | None
    n: int
    """Seeds with a value."""
    judged: float | None
    """The number compared with the bar: the mean, or the worst seed's value (``judge_on``)."""
    status: Status
    interval_clear: bool | None
    """The whole 95% interval is on the expected side of the threshold (None: undefined)."""
    excludes_zero: bool | None
    """Differences, slopes, log ratios: the 95% interval excludes 0 (None: undefined or not a contrast)."""
    terms: list[TermSummary]
    id: str = ""
    """The contract's flat copy of the finding (``definition`` holds the whole of it): id, claim,
    ``ci`` = (low, high), ``bar`` = the threshold applied, ``passed`` = status PASS."""
    claim: str = ""
    ci: tuple[float, float] | None = None
    bar: float | None = None
    passed: bool = False

    @model_validator(mode="after")
    def _flat_copy(self) -> "FindingResult":
        self.id, self.claim, self.bar = self.definition.id, self.definition.claim, self.threshold
        self.ci = None if self.low is None or self.high is None else (self.low, self.high)
        self.passed = self.status == "PASS"
        return self


def summarize_term(key: str, per_seed: list[Measurements]) -> TermSummary:
    vals = [m.get(key) for m in per_seed]
    have = [v for v in vals if v is not None and math.isfinite(v)]
    iv = mean_interval(have) if have else None
    return TermSummary(key=key, values=vals, mean=iv.mean if iv else None,
                       low=iv.low if iv else None, high=iv.high if iv else None)


_COMPARE = {"greater": lambda x, bar: x > bar, "at_least": lambda x, bar: x >= bar,
            "less": lambda x, bar: x < bar, "at_most": lambda x, bar: x <= bar}


def _beyond(x: float, d: FindingDef, bar: float) -> bool:
    return _COMPARE[d.direction](x, bar)


def _worst(values: list[float], d: FindingDef) -> float:
    """The seed least in the expected direction."""
    return min(values) if d.direction in ("greater", "at_least") else max(values)


def judge(d: FindingDef, per_seed: list[Measurements], quick: bool = False) -> FindingResult:
    """Evaluate ``d`` in every seed and judge the mean against its threshold."""
    bar = d.bar(quick)
    values = [finding_value(d, m) for m in per_seed]
    terms = [summarize_term(k, per_seed) for k in d.terms]
    if not values or any(v is None for v in values):
        have = [v for v in values if v is not None]
        iv = mean_interval(have) if have else None
        return FindingResult(definition=d, threshold=bar, values=values, mean=iv.mean if iv else None,
                             low=iv.low if iv else None, high=iv.high if iv else None,
                             sd=iv.sd if iv else None, n=len(have), judged=None, status="MISSING",
                             interval_clear=None, excludes_zero=None, terms=terms)
    iv = mean_interval(values)
    judged = iv.mean if d.judge_on == "mean" else _worst(values, d)
    defined = iv.low is not None
    clear = (_beyond(iv.low, d, bar) and _beyond(iv.high, d, bar)) if defined else None
    excl = (iv.low > 0 or iv.high < 0) if defined and d.is_contrast else None
    return FindingResult(definition=d, threshold=bar, values=values, mean=iv.mean, low=iv.low,
                         high=iv.high, sd=iv.sd, n=iv.n, judged=judged,
                         status="PASS" if _beyond(judged, d, bar) else "FAIL",
                         interval_clear=clear, excludes_zero=excl, terms=terms)


class FindingsReport(BaseModel):
    """``findings.json``: every finding judged, plus how the run was made."""

    model_config = ConfigDict(extra="forbid")

    format: str = FINDINGS_FORMAT
    mode: Literal["default", "quick"]
    seeds: list[int]
    results: list[FindingResult]
    measurements: list[dict[str, float | None]]
    """Every measurement of every seed (seed order)."""
    curves: dict[str, dict] = {}
    """Per model id: {"steps": [...], "per_seed": [[value per step], ...]} (relearning curves)."""
    runs: list[str] = []
    """Run folder of each seed."""
    wall_seconds: float | None = None
    """Wall time of the invocation that wrote this file (finished stages were skipped)."""
    cpu_seconds: float | None = None
    """CPU time (user + system) of that invocation and its worker processes: / cores = its
    wall time on an otherwise idle machine, at best."""
    stages: list[dict] = []
    """Per stage (all seeds together): {"stage", "jobs", "skipped", "seconds", "job_seconds"}."""
    command: str = ""
    double_bind: DoubleBind | None = None
    """The double bind over every seed's technique students (analysis.double_bind)."""

    @property
    def n_passed(self) -> int:
        return sum(r.passed for r in self.results)


def judge_all(defs: list[FindingDef], per_seed: list[Measurements], quick: bool = False) -> list[FindingResult]:
    return [judge(d, per_seed, quick) for d in defs]
