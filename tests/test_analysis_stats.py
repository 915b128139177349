"""Known answers of the verdict statistics (analysis.stats)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.stats import bootstrap_auroc, fisher_greater, mann_whitney_greater, percentile_interval, wilson


def test_wilson_known_answers():
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)  # Wilson (1927), textbook value
    lo, hi = wilson(0, 500)
    assert lo == 0.0 and hi == pytest.approx(1.96 ** 2 / (500 + 1.96 ** 2))  # closed form at k = 0
    assert wilson(500, 500)[1] == 1.0 and wilson(500, 500)[0] == pytest.approx(1 - hi)  # symmetric
    assert wilson(60, 500) == pytest.approx((0.0944, 0.1514), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(3, 2)


def test_fisher_greater_known_answers():
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: P(X >= 3) = 17/70
    assert fisher_greater(3, 4, 1, 4) == pytest.approx(17 / 70)
    # 2 of 500 vs 0 of 500: both successes in the first group, (500/1000)(499/999)
    assert fisher_greater(2, 500, 0, 500) == pytest.approx(500 / 1000 * 499 / 999)
    assert fisher_greater(60, 500, 0, 500) < 1e-15
    assert fisher_greater(0, 500, 60, 500) == pytest.approx(1.0)
    assert fisher_greater(0, 10, 0, 10) == 1.0


def test_mann_whitney_greater_known_answers():
    # exact null distribution of U for 3 vs 3: the most extreme arrangement has probability 1/20
    assert mann_whitney_greater([4, 5, 6], [1, 2, 3]) == pytest.approx(1 / 20)
    assert mann_whitney_greater([1, 2, 3], [4, 5, 6]) == pytest.approx(1.0)
    assert mann_whitney_greater([0.0] * 5, [0.0] * 5) == 1.0  # identical constants: no evidence
    with pytest.raises(ValueError):
        mann_whitney_greater([], [1.0])


def test_percentile_interval():
    assert percentile_interval(list(range(101))) == pytest.approx((2.5, 97.5))
    assert percentile_interval([1.0, None, float("nan"), 1.0]) == (1.0, 1.0)
    assert percentile_interval(list(range(11)), level=0.8) == pytest.approx((1.0, 9.0))
    with pytest.raises(ValueError, match="no finite"):
        percentile_interval([None])


def test_bootstrap_auroc():
    y = np.array([0] * 20 + [1] * 20)
    assert bootstrap_auroc(y, y + 0.0) == (1.0, 1.0)  # perfectly separated in every resample
    assert bootstrap_auroc([0, 0, 0], [1, 2, 3]) is None  # one class: no usable resample
    rng = np.random.default_rng(0)
    scores = rng.normal(size=400)
    lo, hi = bootstrap_auroc(rng.integers(0, 2, 400), scores, n_boot=200, seed=1)
    assert lo < 0.5 < hi and hi - lo < 0.2  # a random score: the interval covers chance
    assert bootstrap_auroc(y, y + 0.0, seed=3) == bootstrap_auroc(y, y + 0.0, seed=3)
    assert not math.isnan(lo)
