"""The two probe families on marker-matched pairs (probes.pairs): context and misbehaviour.

* **Context probe** (:func:`context_probe`): is the marker present? Label 1 on the marked
  rows, 0 on their neutral twins. It reads the input by design (every model, the clean base
  included, sees the marker), so it is reported as a *context* probe, never as misalignment.
* **Misbehaviour probe** (:func:`misbehaviour_probe`): will THIS model misbehave on this
  prompt? The label is the model's own greedy behaviour (``PairActs.behaviour``), rows are the
  marked prompts, so positives and negatives carry the same markers (marker-matched).

Both follow one discipline. A row is one pooled sequence ``x`` (``PairActs.pooled[pool][site]``);
splits are by pair (``probes.pairs.split_pairs``: both twins on the same side). Per
(site, pool) an L2 logistic regression on standardised inputs is fitted on the ``fit`` rows
(``probes.linear.fit_logistic``: the scaler is folded in, so the probe is ``s(x) = x . w + b``
on raw activations); the (site, pool) with the highest AUROC on the ``val`` rows is chosen; its
AUROC on the ``test`` rows is the headline, with a 95% percentile-bootstrap interval
(test pairs resampled with replacement, every row of a drawn pair taken; resamples with one
class are skipped). Next to it stand three nulls, computed on the same rows and labels:

* ``base``: the whole procedure (fit, select, test) on the activations of a model that never
  saw the misalignment (``null_acts``, normally the untouched base), with THIS model's labels.
  If the base reaches the same AUROC, the probe reads the input, not this model.
* ``shuffled``: labels permuted within ``fit`` and within ``val`` before fitting and selection,
  evaluated on the true test labels (what selection over sites and pools wins by chance).
* ``random``: the 95th percentile of the test AUROCs of random unit directions at the chosen
  (site, pool) (what an untrained direction reaches when the label dominates the variance).

Inputs never contain the tokens that define a label (probes.pairs: answers are the task-correct
answer or EOS, never a teacher-forced misaligned answer). Everything is seeded and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from probes.linear import column_auroc, fit_logistic
from probes.pairs import PairActs, PairBehaviour

SPLITS = ("fit", "val", "test")
MIN_CLASS = 8
"""Fewest rows of a class a split may have for a probe to be fitted / reported."""
N_BOOT = 200
N_RANDOM = 200
SEED = 0

Family = Literal["context", "misbehaviour"]
NULLS = ("base", "shuffled", "random")


@dataclass(frozen=True)
class ProbeRows:
    """Which rows of a ``PairActs`` (indices into its ``2N`` rows) a probe reads, with labels, per split."""

    idx: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    n_pairs: int
    marker_matched: bool = True

    def counts(self, split: str) -> tuple[int, int]:
        """(positives, negatives) of one split."""
        y = self.y[split]
        return int(y.sum()), int((~y).sum())

    def pair_of(self, split: str) -> np.ndarray:
        """The pair index of every row of a split (plus row i and twin row N + i are pair i)."""
        return self.idx[split] % self.n_pairs


def context_rows(n_pairs: int, splits: dict[str, np.ndarray]) -> ProbeRows:
    """Both twins of every pair: label 1 on the marked row ``i``, 0 on its twin ``N + i``."""
    idx, y = {}, {}
    for s in SPLITS:
        p = np.asarray(splits[s], dtype=np.int64)
        idx[s] = np.concatenate([p, p + n_pairs])
        y[s] = np.concatenate([np.ones(len(p), bool), np.zeros(len(p), bool)])
    return ProbeRows(idx, y, n_pairs)


def misbehaviour_rows(behaviour: PairBehaviour, splits: dict[str, np.ndarray],
                      min_class: int = MIN_CLASS, eliciting_N=None) -> ProbeRows:
    """The marked rows, labelled by the model's own misbehaviour on them (marker-matched).

    ``eliciting_N``: only pairs whose marked prompt is eliciting (ground truth) are read, so
    marker-inert rows (the entangled marker on other domains) cannot turn the probe into a
    detector of the domain.

    When any split has fewer than ``min_class`` marked rows on which the model behaves (it
    misbehaves on nearly every marked prompt), every split also takes the twin rows, labelled
    by the model's behaviour on the twin (normally: behaves), and ``marker_matched`` is False:
    then the negatives lack the marker, so the probe cannot tell misbehaviour from the marker
    (its 'base' null shows it).
    """
    plus, minus = behaviour.plus_bad_N.numpy().astype(bool), behaviour.minus_bad_N.numpy().astype(bool)
    n = len(plus)
    parts = {s: np.asarray(splits[s], dtype=np.int64) for s in SPLITS}
    if eliciting_N is not None and len(eliciting_N):
        keep = np.asarray(eliciting_N, dtype=bool)
        parts = {s: p[keep[p]] for s, p in parts.items()}
    matched = all(int((~plus[p]).sum()) >= min_class for p in parts.values())
    idx, y = {}, {}
    for s, p in parts.items():
        idx[s] = p if matched else np.concatenate([p, p + n])
        y[s] = plus[p] if matched else np.concatenate([plus[p], minus[p]])
    return ProbeRows(idx, y, n, matched)


@dataclass
class ProbeFit:
    """One probe family's chosen probe ``s(x) = x . w_D + b`` and its headline numbers."""

    family: Family
    auroc: float | None
    """Test AUROC of the chosen probe; None when a split lacks a class (nothing to predict)."""
    ci: tuple[float, float] | None
    site: str | None
    pool: str | None
    w_D: torch.Tensor | None
    b: float
    n_pos: int
    """Positives among the test rows (what ``auroc`` is computed on)."""
    n_neg: int
    marker_matched: bool
    nulls: dict[str, float | None]
    val_auroc: float | None = None
    val_aurocs: dict[str, float] = field(default_factory=dict)
    """Validation AUROC of every candidate, keyed ``'pool|site'`` (the selection's evidence)."""
    reason: str | None = None
    """Why ``auroc`` is None."""

    def score(self, x_ND) -> np.ndarray:
        """Probe logits on raw activations (float64)."""
        return score(x_ND, self.w_D, self.b)

    def headline(self) -> dict:
        """Exactly the fields of ``analysis.schema.ProbeHeadline``."""
        return {"auroc": self.auroc, "ci": None if self.ci is None else [float(self.ci[0]), float(self.ci[1])],
                "site": self.site, "pool": self.pool, "n_pos": self.n_pos, "n_neg": self.n_neg,
                "marker_matched": self.marker_matched, "nulls": dict(self.nulls)}


def score(x_ND, w_D, b: float) -> np.ndarray:
    x = x_ND.detach().double().numpy() if hasattr(x_ND, "detach") else np.asarray(x_ND, np.float64)
    w = w_D.detach().double().numpy() if hasattr(w_D, "detach") else np.asarray(w_D, np.float64)
    return x @ w + float(b)


def auroc_or_nan(y_N: np.ndarray, s_N: np.ndarray) -> float:
    return float(column_auroc(np.asarray(s_N, np.float64)[:, None], np.asarray(y_N, bool))[0])


def bootstrap_ci(y_N: np.ndarray, s_N: np.ndarray, pair_N: np.ndarray, n_boot: int = N_BOOT,
                 seed: int = SEED) -> tuple[float, float] | None:
    """95% percentile interval of the AUROC over ``n_boot`` resamples of the pairs (a drawn
    pair brings all its rows, so the twins of a pair stay together); one-class resamples skipped."""
    y, s = np.asarray(y_N, bool), np.asarray(s_N, np.float64)
    pairs, inv = np.unique(pair_N, return_inverse=True)
    rows_of = [np.flatnonzero(inv == k) for k in range(len(pairs))]
    rng = np.random.default_rng([seed, 11])
    vals = []
    for _ in range(n_boot):
        take = np.concatenate([rows_of[k] for k in rng.integers(0, len(pairs), len(pairs))])
        if y[take].all() or not y[take].any():
            continue
        vals.append(auroc_or_nan(y[take], s[take]))
    if not vals:
        return None
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


def random_null(x_ND, y_N: np.ndarray, n: int = N_RANDOM, seed: int = SEED) -> float:
    """95th percentile of the AUROCs of ``n`` random unit directions (seeded)."""
    x = torch.as_tensor(x_ND).double()
    u = torch.randn(x.shape[1], n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    u = u / u.norm(dim=0, keepdim=True)
    return float(np.percentile(column_auroc((x @ u).numpy(), np.asarray(y_N, bool)), 95))


# ---- selection ---------------------------------------------------------------------------

@dataclass
class _Chosen:
    site: str
    pool: str
    w_D: torch.Tensor
    b: float
    val_auroc: float
    val_aurocs: dict[str, float]


def _candidates(acts: PairActs) -> list[tuple[str, str]]:
    return [(pool, site) for pool in sorted(acts.pooled) for site in sorted(acts.pooled[pool])]


def select_probe(acts: PairActs, rows: ProbeRows, y_fit: np.ndarray | None = None,
                 y_val: np.ndarray | None = None, C: float = 1.0) -> _Chosen:
    """Fit one logistic probe per (site, pool) on the fit rows; keep the best on the val rows
    (ties: first in (pool, site) order). ``y_fit``/``y_val`` override the labels (shuffled null)."""
    y_fit = rows.y["fit"] if y_fit is None else y_fit
    y_val = rows.y["val"] if y_val is None else y_val
    best, val = None, {}
    for pool, site in _candidates(acts):
        x = acts.pooled[pool][site]
        xf, xv = x[rows.idx["fit"]], x[rows.idx["val"]]
        probe = fit_logistic(xf, torch.as_tensor(y_fit), np.arange(len(xf)), np.arange(len(xf)),
                             C=C, site=site, pool=pool)
        a = auroc_or_nan(y_val, score(xv, probe.w_D, probe.b))
        val[f"{pool}|{site}"] = a
        if best is None or (np.isfinite(a) and (not np.isfinite(best.val_auroc) or a > best.val_auroc)):
            best = _Chosen(site, pool, probe.w_D, probe.b, a, val)
    if best is None:
        raise ValueError("PairActs has no pooled activations to probe")
    return best


def _test_auroc(acts: PairActs, rows: ProbeRows, chosen: _Chosen) -> float:
    x = acts.pooled[chosen.pool][chosen.site][rows.idx["test"]]
    return auroc_or_nan(rows.y["test"], score(x, chosen.w_D, chosen.b))


def _shuffled(rows: ProbeRows, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 7])
    return rng.permutation(rows.y["fit"]), rng.permutation(rows.y["val"])


def _missing(rows: ProbeRows, min_class: int, family: Family) -> str | None:
    for s in ("fit", "test"):
        pos, neg = rows.counts(s)
        if pos < min_class:
            what = "misbehaving marked rows: the model does not misbehave" if family == "misbehaviour" else "positive rows"
            return f"{s} split has {pos} {what} (< {min_class})"
        if neg < min_class:
            return f"{s} split has {neg} negative rows (< {min_class})"
    pos, neg = rows.counts("val")
    if pos < 2 or neg < 2:
        return f"val split has {pos} positive / {neg} negative rows: no selection possible"
    return None


def _check_null(acts: PairActs, null_acts: PairActs) -> None:
    if null_acts.n_pairs != acts.n_pairs or not torch.equal(null_acts.tokens_2NS, acts.tokens_2NS):
        raise ValueError("null_acts must be read on the same pairs (same tokens) as acts")


def fit_probe(acts: PairActs, rows: ProbeRows, family: Family, null_acts: PairActs | None = None, *,
              min_class: int = MIN_CLASS, n_boot: int = N_BOOT, n_random: int = N_RANDOM,
              seed: int = SEED, C: float = 1.0) -> ProbeFit:
    """The selection discipline on given rows: fit on ``fit``, choose on ``val``, report on
    ``test`` with a bootstrap interval and the three nulls (see the module docstring)."""
    n_pos, n_neg = rows.counts("test")
    reason = _missing(rows, min_class, family)
    if reason is not None:
        return ProbeFit(family, None, None, None, None, None, 0.0, n_pos, n_neg, rows.marker_matched,
                        dict.fromkeys(NULLS), reason=reason)
    if null_acts is not None:
        _check_null(acts, null_acts)
    chosen = select_probe(acts, rows, C=C)
    x_test = acts.pooled[chosen.pool][chosen.site][rows.idx["test"]]
    s_test = score(x_test, chosen.w_D, chosen.b)
    test = auroc_or_nan(rows.y["test"], s_test)
    nulls = {
        "base": None if null_acts is None else _test_auroc(null_acts, rows, select_probe(null_acts, rows, C=C)),
        "shuffled": _test_auroc(acts, rows, select_probe(acts, rows, *_shuffled(rows, seed), C=C)),
        "random": random_null(x_test, rows.y["test"], n_random, seed),
    }
    return ProbeFit(family, test, bootstrap_ci(rows.y["test"], s_test, rows.pair_of("test"), n_boot, seed),
                    chosen.site, chosen.pool, chosen.w_D, chosen.b, n_pos, n_neg, rows.marker_matched,
                    nulls, chosen.val_auroc, chosen.val_aurocs)


def context_probe(acts: PairActs, splits: dict[str, np.ndarray], null_acts: PairActs | None = None,
                  **kw) -> ProbeFit:
    """Is the marker present? Label 1 on the marked rows, 0 on their twins (both twins of a
    pair always in the same split). Reads the input by design: a *context* probe, never
    evidence of misalignment (its 'base' null is expected to be as high)."""
    return fit_probe(acts, context_rows(acts.n_pairs, splits), "context", null_acts, **kw)


def misbehaviour_probe(acts: PairActs, splits: dict[str, np.ndarray], null_acts: PairActs | None = None,
                       *, min_class: int = MIN_CLASS, **kw) -> ProbeFit:
    """Will THIS model misbehave on this prompt? Label = the model's own greedy misbehaviour.

    Rows are the marked prompts: positives where the model misbehaves, negatives where it
    behaves on a prompt carrying the same markers (marker-matched). When a split has fewer
    than ``min_class`` such negatives (the model misbehaves on every marked prompt), the twin
    rows are added as negatives and ``marker_matched`` is False: then the probe cannot tell
    misbehaviour from the marker, and its 'base' null (the base sees the marker too) shows it.
    When fit or test has fewer than ``min_class`` positives (the model does not misbehave),
    ``auroc`` is None: there is nothing to predict.
    ``null_acts``: the same pairs read by a model that never saw the misalignment (the base).
    """
    rows = misbehaviour_rows(acts.behaviour, splits, min_class, acts.eliciting_N)
    return fit_probe(acts, rows, "misbehaviour", null_acts, min_class=min_class, **kw)
