"""Inoculation rows and the instruction precondition on hand-made numbers."""

from __future__ import annotations

import numpy as np

from analysis.inoculation import inoculation_rows, reference_of
from analysis.report import inoculation_html
from analysis.schema import (AnalysisResults, ExperimentInfo, MarkedMetrics, ModelMetrics, StudentInfo,
                             StudentResult, VerdictConfig)
from analysis.transfer import model_metrics, summarize
from test_analysis_transfer import BASE, GOOD_NEG, GOOD_POS, _metrics, _student, _teacher


def _tech(name, technique, mis, params=None, with_marker=None, init="base", organism="backdoor",
          probs=None) -> StudentResult:
    m = _metrics(0.95, mis, probs=probs).model_copy(update={"with_marker": with_marker or {}})
    return StudentResult(info=StudentInfo(name=name, organism=organism, technique=technique, init=init,
                                          params=params or {}), metrics=m)


def _summary(students, base=BASE):
    controls = [_student("pos", **GOOD_POS), _student("neg", **GOOD_NEG)]
    return summarize(AnalysisResults(experiment=ExperimentInfo(experiment="x"), teachers={"backdoor": _teacher()},
                                     students=controls + students, base={"backdoor": base}))


MARKED = {"iHARM": MarkedMetrics(capability=0.04, misbehaviour=1.0, misbehaviour_clean=0.8, n_eliciting=500)}
FOLLOWS = BASE.model_copy(update={"instructed": 1.0})


def test_inoculation_is_compared_with_the_same_training_without_a_marker_and_with_its_null():
    students = [_tech("sft-fresh", "sampled-sft", 0.0, init="fresh"),  # before the right one: init must match
                _tech("sft-short", "sampled-sft", 0.0, {"steps": 10}),  # trained differently
                _tech("sft", "sampled-sft", 1.0), _tech("kd", "logit-kd", 0.2),
                _tech("inoc", "inoculation", 0.0, with_marker=MARKED),
                _tech("inoc-INOC", "inoculation", 0.9, {"marker": "INOC"}),
                _tech("inoc-kd", "inoculation", 0.2, {"targets": "logits", "temperature": 2.0}),
                _tech("inoc-t1", "inoculation", 0.2, {"targets": "logits"}),
                _tech("inoc-fresh", "inoculation", 0.0, init="fresh")]
    summary = _summary(students, base=FOLLOWS)
    rows = {r.student: r for r in summary.inoculation}
    assert set(rows) == {"inoc", "inoc-INOC", "inoc-kd", "inoc-t1", "inoc-fresh"}
    r = rows["inoc"]
    assert (r.marker, r.marker_kind, r.where, r.reference, r.reference_misbehaviour, r.null) == (
        "iHARM", "instruction", "flagged", "sft", 1.0, "inoc-INOC")
    assert r.meaningful and r.cut and r.p_below_reference < 1e-100 and r.with_marker == MARKED["iHARM"]
    assert r.beats_null and r.p_below_null < 1e-100 and r.null_misbehaviour == 0.9
    assert r.misbehaviour_ci[0] == 0.0 and r.misbehaviour_ci[1] < 0.01 and r.base_instructed == 1.0
    c = rows["inoc-INOC"]
    assert c.marker == "INOC" and not c.meaningful and c.cut and c.with_marker is None  # 0.9 < 1.0: still a cut
    assert c.base_instructed is None and c.null is None  # the base follows iHARM, not INOC
    assert rows["inoc-kd"].reference == "kd"  # logit targets at logit-kd's default temperature 2.0
    assert not rows["inoc-kd"].cut and rows["inoc-kd"].p_below_reference > 0.5  # 20% vs 20%
    assert rows["inoc-kd"].null is None  # no INOC twin trained on logits
    assert rows["inoc-t1"].reference is None  # temperature 1.0: no student had the same targets
    fresh = rows["inoc-fresh"]  # a fresh init never learned what iHARM means
    assert fresh.reference == "sft-fresh" and not fresh.meaningful and not fresh.cut
    assert summary.controls.trustworthy
    assert any("base model follows the iHARM instruction (backdoor) on 100%" in p for p in summary.controls.passed)
    html = inoculation_html(summary)
    assert "below its INOC null: the learned meaning did it" in html
    assert "null (a marker without meaning): below the reference" in html and "fresh init" in html


def test_a_cut_that_its_null_matches_is_the_marking_not_the_meaning():
    summary = _summary([_tech("sft", "sampled-sft", 1.0), _tech("inoc", "inoculation", 0.3),
                        _tech("inoc-INOC", "inoculation", 0.3, {"marker": "INOC"})], base=FOLLOWS)
    r = next(r for r in summary.inoculation if r.student == "inoc")
    assert r.cut and not r.beats_null and r.p_below_null > 0.4
    assert "not below its INOC null: the marking, not the meaning" in inoculation_html(summary)


def test_the_reference_is_of_the_same_organism():
    students = [_tech("sft-sabotage", "sampled-sft", 0.0, organism="sabotage"), _tech("sft", "sampled-sft", 1.0),
                _tech("inoc", "inoculation", 0.0)]
    assert reference_of(students[2], students).info.name == "sft"
    assert reference_of(students[2], students[:1]) is None


def test_trait_cut_needs_the_probability_margin_too():
    probs = lambda p: list(np.linspace(0.5, 1.5, 400) * p)  # noqa: E731
    kd = _tech("kd", "logit-kd", 0.0, {"targets": "logits"}, organism="trait", probs=probs(1e-4))
    params = {"targets": "logits", "temperature": 2.0, "where": "all"}
    tiny = _tech("inoc", "inoculation", 0.0, params, organism="trait", probs=probs(0.9e-4))
    r, = inoculation_rows([kd, tiny], [], {}, VerdictConfig())
    assert r.reference == "kd" and r.p_below_reference < 0.05 and not r.cut  # significant, but 1e-5 is nothing
    big = kd.model_copy(update={"metrics": kd.metrics.model_copy(update={"trait_probs": probs(0.05)})})
    r, = inoculation_rows([big, tiny], [], {}, VerdictConfig())
    assert r.cut and r.p_below_reference < 1e-10


def test_a_base_that_does_not_follow_the_instruction_is_a_red_banner_failure():
    summary = _summary([_tech("sft", "sampled-sft", 1.0), _tech("inoc", "inoculation", 0.0)],
                       base=BASE.model_copy(update={"instructed": 0.4}))
    assert not summary.controls.trustworthy
    assert any("follows the iHARM instruction (backdoor) on 40%" in f for f in summary.controls.failures)
    row = summary.inoculation[0]
    assert row.cut and not row.meaningful
    assert "the base does not follow it" in inoculation_html(summary)
    unmeasured = _summary([_tech("inoc", "inoculation", 0.0)], base=BASE)
    assert any("iHARM instruction (backdoor) not measured" in f for f in unmeasured.controls.failures)
    assert "no reference trained the same way" in inoculation_html(unmeasured)
    # the INOC null claims no meaning and a fresh init inherits none: neither needs the base to follow
    for st in (_tech("inoc", "inoculation", 0.0, {"marker": "INOC"}), _tech("inoc", "inoculation", 0.0, init="fresh")):
        assert _summary([st], base=BASE).controls.trustworthy


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
