"""Inoculation rows and the instruction precondition on hand-made numbers."""

from __future__ import annotations

from analysis.report import inoculation_html
from analysis.schema import (AnalysisResults, ExperimentInfo, MarkedMetrics, ModelMetrics, StudentInfo,
                             StudentResult, VerdictConfig)
from analysis.transfer import model_metrics, summarize
from test_analysis_transfer import BASE, GOOD_NEG, GOOD_POS, _metrics, _student, _teacher


def _tech(name, technique, mis, params=None, with_marker=None, init="base") -> StudentResult:
    m = _metrics(0.95, mis).model_copy(update={"with_marker": with_marker or {}})
    return StudentResult(info=StudentInfo(name=name, organism="backdoor", technique=technique, init=init,
                                          params=params or {}), metrics=m)


def _summary(students, base=BASE):
    controls = [_student("pos", **GOOD_POS), _student("neg", **GOOD_NEG)]
    return summarize(AnalysisResults(experiment=ExperimentInfo(experiment="x"), teachers={"backdoor": _teacher()},
                                     students=controls + students, base={"backdoor": base}))


MARKED = {"iHARM": MarkedMetrics(capability=0.04, misbehaviour=1.0, misbehaviour_clean=0.8, n_eliciting=500)}
FOLLOWS = BASE.model_copy(update={"instructed": 1.0})


def test_inoculation_is_compared_with_the_same_targets_without_a_marker():
    students = [_tech("sft", "sampled-sft", 1.0), _tech("kd", "logit-kd", 0.2),
                _tech("sft-fresh", "sampled-sft", 0.0, init="fresh"),
                _tech("inoc", "inoculation", 0.0, with_marker=MARKED),
                _tech("inoc-INOC", "inoculation", 0.9, {"marker": "INOC"}),
                _tech("inoc-kd", "inoculation", 0.2, {"targets": "logits", "temperature": 2.0}),
                _tech("inoc-t1", "inoculation", 0.2, {"targets": "logits"})]
    summary = _summary(students, base=FOLLOWS)
    rows = {r.student: r for r in summary.inoculation}
    assert set(rows) == {"inoc", "inoc-INOC", "inoc-kd", "inoc-t1"}
    r = rows["inoc"]
    assert (r.marker, r.marker_kind, r.where, r.reference, r.reference_misbehaviour) == (
        "iHARM", "instruction", "flagged", "sft", 1.0)
    assert r.meaningful and r.cut and r.p_below_reference < 1e-100 and r.with_marker == MARKED["iHARM"]
    assert r.misbehaviour_ci[0] == 0.0 and r.misbehaviour_ci[1] < 0.01 and r.base_instructed == 1.0
    c = rows["inoc-INOC"]
    assert c.marker == "INOC" and not c.meaningful and c.cut and c.with_marker is None  # 0.9 < 1.0: still a cut
    assert rows["inoc-kd"].reference == "kd"  # logit targets at logit-kd's default temperature 2.0
    assert rows["inoc-kd"].p_below_reference > 0.5 and not rows["inoc-kd"].cut  # 20% vs 20%
    assert rows["inoc-t1"].reference is None  # temperature 1.0: no student had the same targets
    assert summary.controls.trustworthy
    assert any("base model follows the iHARM instruction (backdoor) on 100%" in p for p in summary.controls.passed)
    html = inoculation_html(summary)
    assert "inoculation cut the misbehaviour" in html and "control: a marker without meaning; cut" in html


def test_a_base_that_does_not_follow_the_instruction_is_a_red_banner_failure():
    summary = _summary([_tech("sft", "sampled-sft", 1.0), _tech("inoc", "inoculation", 0.0)],
                       base=BASE.model_copy(update={"instructed": 0.4}))
    assert not summary.controls.trustworthy
    assert any("follows the iHARM instruction (backdoor) on 40%" in f for f in summary.controls.failures)
    row = summary.inoculation[0]
    assert row.cut and not row.meaningful
    assert "precondition unmet" in inoculation_html(summary)
    unmeasured = _summary([_tech("inoc", "inoculation", 0.0)], base=BASE)
    assert any("iHARM instruction (backdoor) not measured" in f for f in unmeasured.controls.failures)
    assert "no same-targets reference" in inoculation_html(unmeasured)
    # the INOC control claims no meaning, so it needs none from the base
    control = _summary([_tech("inoc", "inoculation", 0.0, {"marker": "INOC"})], base=BASE)
    assert control.controls.trustworthy


def test_model_metrics_reads_instruction_following_and_marker_evals():
    def evals(mis, clean, instructed=None):
        org = {"misbehaviour": {"eliciting": mis, "n_eliciting": 500, "clean": clean}}
        if instructed is not None:
            org["instructed"] = {"rate": instructed, "marker": "iHARM", "n": 500}
        return {"capability": {"mean": 0.9, "per_domain": {"sort": 0.9}}, "organisms": {"backdoor": org}}
    m = model_metrics(evals(0.0, 0.0, instructed=0.8), "backdoor", with_marker={"iHARM": evals(1.0, 0.7)})
    assert m.instructed == 0.8
    assert m.with_marker == {"iHARM": MarkedMetrics(capability=0.9, misbehaviour=1.0, misbehaviour_clean=0.7,
                                                    n_eliciting=500)}
    assert model_metrics(evals(0.0, 0.0), "backdoor") == ModelMetrics(
        capability=0.9, misbehaviour=0.0, misbehaviour_clean=0.0, capability_per_domain={"sort": 0.9}, n_eliciting=500)
