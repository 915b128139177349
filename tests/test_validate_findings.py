"""Finding computations on hand-made numbers: interval math, operations, PASS/FAIL direction."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from analysis.findings import FindingDef, FindingsReport, finding_value, judge, mean_interval


def fdef(**kw) -> FindingDef:
    base = dict(id="1a", title="t", claim="c", source="s", op="difference", terms=["a:x", "b:x"],
                direction="greater", threshold=0.0)
    return FindingDef(**{**base, **kw})


def test_interval_matches_hand_computed_t():
    # values 1, 2, 3: mean 2, sd 1, t_{0.975,2} = 4.302652729911275 -> half width 4.3027/sqrt(3)
    iv = mean_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert iv.mean == pytest.approx(2.0)
    assert iv.sd == pytest.approx(1.0)
    assert (iv.low, iv.high) == pytest.approx((2 - half, 2 + half))
    assert iv.n == 3


def test_interval_two_seeds_uses_t_with_one_dof():
    iv = mean_interval([0.0, 1.0])  # sd = 1/sqrt(2), t_{0.975,1} = 12.7062
    half = 12.706204736174698 * (1 / math.sqrt(2)) / math.sqrt(2)
    assert (iv.low, iv.high) == pytest.approx((0.5 - half, 0.5 + half))


def test_one_seed_interval_is_undefined():
    iv = mean_interval([0.7])
    assert iv.mean == 0.7 and iv.low is None and iv.high is None and iv.sd is None


def test_operations():
    m = {"a:x": 0.6, "b:x": 0.2, "c:x": 0.1}
    assert finding_value(fdef(), m) == pytest.approx(0.4)
    assert finding_value(fdef(op="ratio"), m) == pytest.approx(3.0)
    assert finding_value(fdef(op="log_ratio"), m) == pytest.approx(math.log10(3.0))
    assert finding_value(fdef(op="min", terms=["a:x", "b:x", "c:x"]), m) == pytest.approx(0.1)
    assert finding_value(fdef(op="max", terms=["a:x", "b:x", "c:x"]), m) == pytest.approx(0.6)
    assert finding_value(fdef(op="value", terms=["c:x"]), m) == pytest.approx(0.1)
    # y = 1 - 2x exactly: slope -2
    slope = fdef(op="slope", terms=["a:y", "b:y", "c:y"], xs=[0.0, 0.25, 0.5])
    assert finding_value(slope, {"a:y": 1.0, "b:y": 0.5, "c:y": 0.0}) == pytest.approx(-2.0)


def test_missing_or_undefined_values_are_none():
    assert finding_value(fdef(), {"a:x": 0.5}) is None
    assert finding_value(fdef(op="ratio"), {"a:x": 0.5, "b:x": 0.0}) is None
    assert finding_value(fdef(op="log_ratio"), {"a:x": 0.0, "b:x": 0.1}) is None


def test_pass_fail_follow_the_direction():
    seeds = [{"a:x": 0.5, "b:x": 0.1}, {"a:x": 0.6, "b:x": 0.1}, {"a:x": 0.4, "b:x": 0.1}]
    assert judge(fdef(), seeds).status == "PASS"
    assert judge(fdef(direction="less"), seeds).status == "FAIL"
    assert judge(fdef(threshold=0.5), seeds).status == "FAIL"  # mean 0.4 is not > 0.5
    r = judge(fdef(), seeds)
    assert r.mean == pytest.approx(0.4) and r.excludes_zero and r.interval_clear


def test_at_least_is_inclusive_and_greater_is_strict():
    seeds = [{"a:x": 1.0}, {"a:x": 1.0}]
    assert judge(fdef(op="value", terms=["a:x"], direction="at_least", threshold=1.0), seeds).status == "PASS"
    assert judge(fdef(op="value", terms=["a:x"], direction="greater", threshold=1.0), seeds).status == "FAIL"
    assert judge(fdef(op="value", terms=["a:x"], direction="at_most", threshold=1.0), seeds).status == "PASS"


def test_mean_passes_but_interval_straddles_zero():
    seeds = [{"a:x": 0.9, "b:x": 0.1}, {"a:x": 0.0, "b:x": 0.2}, {"a:x": 0.3, "b:x": 0.25}]
    r = judge(fdef(), seeds)
    assert r.status == "PASS" and r.excludes_zero is False and r.interval_clear is False


def test_quick_threshold_applies_only_in_quick_mode():
    d = fdef(op="value", terms=["a:x"], direction="at_least", threshold=0.99, quick_threshold=0.9)
    seeds = [{"a:x": 0.95}]
    assert judge(d, seeds).status == "FAIL"
    r = judge(d, seeds, quick=True)
    assert r.status == "PASS" and r.threshold == 0.9 and r.interval_clear is None


def test_worst_seed_judging_for_claims_that_must_always_hold():
    seeds = [{"a:x": 1.0}, {"a:x": 1.0}, {"a:x": 0.9}]
    d = fdef(op="value", terms=["a:x"], direction="at_least", threshold=0.95)
    assert judge(d, seeds).status == "PASS"  # mean 0.967
    r = judge(d.model_copy(update={"judge_on": "worst"}), seeds)
    assert r.status == "FAIL" and r.judged == pytest.approx(0.9)
    low = fdef(op="value", terms=["a:x"], direction="less", threshold=0.95, judge_on="worst")
    assert judge(low, seeds).judged == pytest.approx(1.0)


def test_missing_term_in_any_seed_is_missing_not_fail():
    r = judge(fdef(), [{"a:x": 0.5, "b:x": 0.1}, {"a:x": 0.5}])
    assert r.status == "MISSING" and r.n == 1 and r.values[1] is None
    assert r.terms[1].values == [0.1, None]


def test_definition_shape_errors_name_the_finding():
    with pytest.raises(ValidationError, match="op 'difference' takes exactly 2"):
        fdef(terms=["a:x"])
    with pytest.raises(ValidationError, match="'xs' is required"):
        fdef(op="slope", terms=["a:x", "b:x"])
    with pytest.raises(ValidationError, match="'xs' has 1 values for 2 terms"):
        fdef(op="slope", xs=[0.1])


def test_report_round_trips_through_json():
    r = judge(fdef(), [{"a:x": 0.5, "b:x": 0.1}])
    rep = FindingsReport(mode="quick", seeds=[0], results=[r], measurements=[{"a:x": 0.5, "b:x": 0.1}])
    back = FindingsReport.model_validate_json(rep.model_dump_json())
    assert back.results[0].status == "PASS" and back.n_passed == 1
