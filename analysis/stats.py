"""The few statistics the verdicts and intervals need (scipy where it has them).

* :func:`wilson` -- Wilson score interval of a binomial rate k / n:

      centre = (p + z²/2n) / (1 + z²/n),
      half   = z / (1 + z²/n) · sqrt(p(1 − p)/n + z²/4n²),     p = k / n.

  Unlike the normal interval it stays inside [0, 1] and is not degenerate at k = 0
  (0 of 500 gives [0, 0.0076]), which is where most negative controls live.
* :func:`fisher_greater` -- one-sided Fisher exact test on the 2x2 table
  [[k1, n1 − k1], [k2, n2 − k2]]: p-value of "rate 1 > rate 2".
* :func:`mann_whitney_greater` -- one-sided Mann-Whitney U test: p-value of "x tends to be
  larger than y" (per-prompt trait probabilities, where greedy rates are all 0).
* :func:`percentile_interval` -- the central ``level`` share of a sample (bootstrap intervals).
* :func:`bootstrap_auroc` -- percentile interval of an AUROC over row resamples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

Interval = tuple[float, float]


def wilson(k: int, n: int, z: float = 1.96) -> Interval:
    """Wilson score interval of the rate ``k / n`` (95% for z = 1.96); (0, 1) when n = 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    p, z2 = k / n, z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # exact ends at k = 0 and k = n (the formula gives them up to rounding)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def fisher_greater(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided Fisher exact p-value that the rate k1/n1 exceeds the rate k2/n2."""
    for k, n in ((k1, n1), (k2, n2)):
        if not 0 <= k <= n:
            raise ValueError(f"fisher_greater: need 0 <= k <= n, got k={k}, n={n}")
    return float(sps.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="greater").pvalue)


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided Mann-Whitney U p-value that values of ``x`` tend to exceed those of ``y``.

    1.0 when the two samples are identical constants (no evidence either way; scipy would
    return NaN)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) == 0 or len(y) == 0:
        raise ValueError("mann_whitney_greater: both samples need at least one value")
    p = float(sps.mannwhitneyu(x, y, alternative="greater").pvalue)
    return 1.0 if math.isnan(p) else p


def percentile_interval(samples: Sequence[float | None], level: float = 0.95) -> Interval:
    """(lo, hi): the ``(1 − level)/2`` and ``(1 + level)/2`` quantiles, None/NaN dropped."""
    vals = np.array([s for s in samples if s is not None], dtype=float)
    vals = vals[~np.isnan(vals)]
    if not len(vals):
        raise ValueError("percentile_interval: no finite samples")
    lo, hi = np.percentile(vals, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def bootstrap_auroc(y: Sequence[int], scores: Sequence[float], n_boot: int = 200,
                    seed: int = 0, level: float = 0.95) -> Interval | None:
    """Percentile interval of the AUROC over ``n_boot`` resamples of the rows (with
    replacement); resamples holding only one class are skipped. None when none is usable."""
    from sklearn.metrics import roc_auc_score
    y, scores = np.asarray(y).astype(int), np.asarray(scores, dtype=float)
    if len(y) != len(scores):
        raise ValueError(f"bootstrap_auroc: {len(y)} labels but {len(scores)} scores")
    return _bootstrap_rows(y, lambda idx: roc_auc_score(y[idx], scores[idx]), n_boot, seed, level)


def _bootstrap_rows(y: np.ndarray, stat, n_boot: int, seed: int, level: float) -> Interval | None:
    """Percentile interval of ``stat(idx)`` over ``n_boot`` resamples ``idx`` of the rows (with
    replacement); resamples whose labels ``y`` hold one class are skipped."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) == 2:
            values.append(stat(idx))
    return percentile_interval(values, level) if values else None


def paired_bootstrap_auroc_diff(y: Sequence[int], scores_a: Sequence[float], scores_b: Sequence[float],
                                n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Interval | None:
    """Percentile interval of AUROC(a) - AUROC(b) over resamples of the rows, the same rows
    for both (two probes scored on the same test rows are paired); resamples holding one class
    are skipped. None when none is usable."""
    from sklearn.metrics import roc_auc_score
    y = np.asarray(y).astype(int)
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if not len(y) == len(a) == len(b):
        raise ValueError(f"paired_bootstrap_auroc_diff: {len(y)} labels, {len(a)} and {len(b)} scores")
    return _bootstrap_rows(y, lambda idx: roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx]),
                           n_boot, seed, level)
