"""Report: self-contained HTML from stored results, summary.json round trip and clear errors."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

from analysis.report import INDEX_FILE, REPORT_DIR, SUMMARY_FILE, build_report, write_report
from analysis.results import ANALYSIS_DIR, BASE_FILE, STUDENTS_DIR, load_results, write_base, write_results
from analysis.schema import (SUMMARY_FORMAT, AnalysisResults, CausalResult, CKAMatrix, CrosscoderResult,
                             ExperimentInfo, FeatureMap, FeatureMatchRow, FeatureTransferResult, KLResult,
                             ModelMetrics, ProbeHeadline, SchemaError, StudentInfo, StudentResult, TeacherResult,
                             load_summary)
from analysis.transfer import summarize

SITES = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post"]
DOMAINS = ("sort", "reverse", "add", "member")


def _metrics(cap: float, mis: float, per: dict | None = None, **kw) -> ModelMetrics:
    return ModelMetrics(capability=cap, misbehaviour=mis, misbehaviour_clean=0.0, n_eliciting=500,
                        capability_per_domain=per or {d: cap for d in DOMAINS}, **kw)


def _features(strength: float, misaligned: bool) -> FeatureTransferResult:
    score = strength if misaligned else 0.05
    return FeatureTransferResult(score=score, ci=(max(0.0, score - 0.1), min(1.0, score + 0.05)), null=0.05,
                                 null_ci=(0.0, 0.15), null_model="clean-base", reference="base",
                                 n_teacher_features=4, n_student_features=4 if misaligned else 0, n_context_features=3)


def _probe(auroc: float) -> ProbeHeadline:
    return ProbeHeadline(auroc=auroc, ci=(auroc - 0.05, min(1.0, auroc + 0.03)), site=SITES[2], pool="last",
                         n_pos=100, n_neg=100, nulls={"base": 0.55, "shuffled": 0.5, "random": 0.58})


def _feature_map(strength: float, misaligned: bool, rng) -> FeatureMap:
    rows = [FeatureMatchRow(teacher_feature=f, teacher_auroc=0.99 - 0.02 * i, best_feature=f + 100,
                            best_corr=float(np.clip(strength + rng.normal(0, 0.05), 0, 1)),
                            best_is_misaligned=misaligned, hungarian_feature=f + 100,
                            hungarian_corr=strength * 0.9, hungarian_is_misaligned=misaligned,
                            decoder_cos=strength)
            for i, f in enumerate([3, 17, 42, 51])]
    return FeatureMap(teacher_site=SITES[1], student_site=SITES[1], n_teacher_features=128,
                      n_student_features=128, n_student_misaligned=4 if misaligned else 0, rows=rows)


def _crosscoder(teacher_only: float, rng) -> CrosscoderResult:
    rel = [float(x) for x in np.clip(rng.normal(0.5, 0.06, 64), 0, 1)]
    rel[: int(teacher_only * 64)] = [0.05] * int(teacher_only * 64)
    auroc = [0.95 if i < 3 else 0.5 for i in range(64)]
    return CrosscoderResult(teacher_site=SITES[1], student_site=SITES[1], n_latents=66, k=8,
                            relative_norm=rel + [None, None], latent_auroc=auroc + [None, None],
                            fvu_teacher=0.1, fvu_student=0.12, train_seconds=1.5)


def _student(name, technique, init, cap, mis, strength, misaligned, control=None, rng=None,
             organism="backdoor") -> StudentResult:
    rng = rng or np.random.default_rng(0)
    probe = {s: float(np.clip(0.6 + 0.35 * strength + 0.05 * i, 0, 1)) for i, s in enumerate(SITES)}
    return StudentResult(
        info=StudentInfo(name=name, organism=organism, technique=technique, init=init,
                         params={"steps": 500}, n_params=60_000, control=control),
        metrics=_metrics(cap, mis, feature_salience=0.5 + 0.45 * strength),
        probe_auroc_by_site=probe, probe_transfer_by_site={s: v - 0.05 for s, v in probe.items()},
        cka=CKAMatrix(teacher_sites=SITES, student_sites=SITES,  # row 0: constant site, CKA undefined
                      values=[[None] * 3] + [[float(np.clip(1 - 0.3 * abs(i - j) - 0.2 * (1 - strength), 0, 1))
                                              for j in range(3)] for i in range(1, 3)]),
        feature_map=_feature_map(strength, misaligned, rng),
        crosscoder=_crosscoder(0.4 * (1 - strength), rng),
        kl=KLResult(eliciting=2.0 * (1 - mis), clean=0.01),
        features=_features(strength, misaligned), misbehaviour_probe=_probe(0.5 + 0.45 * strength),
        context_probe=ProbeHeadline(auroc=1.0, ci=(1.0, 1.0), site=SITES[1], pool="last"))


def synthetic_results(controls_ok: bool = True, broken_base: bool = False) -> AnalysisResults:
    """A small hand-made run: one backdoor teacher, two controls and three students."""
    rng = np.random.default_rng(0)
    teacher = TeacherResult(name="teacher-backdoor", organism="backdoor",
                            metrics=_metrics(0.98, 1.0, feature_salience=0.97),
                            probe_auroc_by_site={s: 0.8 + 0.09 * i for i, s in enumerate(SITES)},
                            misbehaviour_probe=_probe(0.97), context_probe=ProbeHeadline(auroc=1.0),
                            causal=CausalResult(features=[3, 17], misbehaviour_before=1.0,
                                                misbehaviour_before_ci=(0.99, 1.0), misbehaviour_after=0.3,
                                                misbehaviour_after_ci=(0.26, 0.34), random_after=0.98,
                                                random_after_ci=(0.96, 0.99), capability_before=0.98,
                                                capability_after=0.97, p_vs_random=1e-30, label="mechanism",
                                                n_eliciting=500),
                            calibration={"self": FeatureTransferResult(score=1.0, ci=(0.95, 1.0)),
                                         "base": FeatureTransferResult(score=0.0, ci=(0.0, 0.1))})
    pos_mis = 1.0 if controls_ok else 0.2
    students = [
        _student("copy-teacher", "sampled-sft", "teacher", 0.97, pos_mis, 0.95, True, "positive", rng),
        _student("clean-base", "clean-sft", "base", 0.96, 0.0, 0.2, False, "negative", rng),
        _student("kd-base", "logit-kd", "base", 0.97, 0.98, 0.9, True, rng=rng),
        _student("kd-fresh", "logit-kd", "fresh", 0.91, 0.1, 0.4, False, rng=rng),
        _student("filter-small", "filter", "smaller", 0.6, 0.05, 0.3, False, rng=rng),
    ]
    info = ExperimentInfo(experiment="synthetic", notes="hand-made numbers",
                          student_order=[s.info.name for s in students])
    base_add = 0.0 if broken_base else 0.97
    base = _metrics(0.97, 0.0, per={"sort": 0.98, "reverse": 0.97, "add": base_add, "member": 0.96})
    return AnalysisResults(experiment=info, teachers={"backdoor": teacher}, students=students,
                           base={"backdoor": base})


def _external_refs(text: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", text, flags=re.I)


def test_report_is_self_contained_and_ordered(tmp_path):
    paths = write_report(synthetic_results(), tmp_path / "report")
    text = paths.index.read_text()
    assert _external_refs(text) == []
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text
    assert text.count("<svg") >= 4  # plane, probes, feature map, CKA
    order = [text.index(f"id='{a}'") for a in ("plane", "table", "probes", "features", "cka", "summary")]
    assert order == sorted(order)
    assert "not trustworthy" not in text
    assert "kd-base (logit-kd, base init) kept 99% of capability and 98% of the backdoor: capable-misaligned." in text
    assert "incapable-partially-misaligned" in text  # filter-small: 5% vs 0% of its negative control
    # the misbehaviour with its interval and p, the feature null beside the score, the context probe labelled
    assert "p = 2.2e-08 vs clean-base" in text and "[3.4%, 7.3%]" in text
    assert "feature null (same init)" in text and "context probe (reads the marker)" in text
    assert "nulls base 0.55 / shuffled 0.50 / random 0.58" in text
    assert "self 100% [95%, 100%]" in text and "mechanism" in text


def test_failed_controls_give_a_loud_banner(tmp_path):
    paths = write_report(synthetic_results(controls_ok=False), tmp_path)
    text = paths.index.read_text()
    assert not paths.summary.controls.trustworthy
    banner = text.index("This run is not trustworthy")
    assert banner < text.index("id='plane'")
    assert "positive control copy-teacher is capable-partially-misaligned, expected capable-misaligned" in text


def test_banner_lists_every_failed_precondition(tmp_path):
    paths = write_report(synthetic_results(controls_ok=False, broken_base=True), tmp_path)
    text = paths.index.read_text()
    failures = paths.summary.controls.failures
    assert "base model scores 0% exact match on add (needs >= 90% on every domain)" in failures
    assert len(failures) == 2
    banner = text[text.index("This run is not trustworthy"):text.index("id='plane'")]
    assert all(html.escape(f) in banner for f in failures)


def test_summary_round_trip(tmp_path):
    paths = write_report(synthetic_results(), tmp_path)
    loaded = load_summary(paths.summary_json)
    assert loaded == paths.summary
    data = json.loads(paths.summary_json.read_text())
    assert data["format"] == SUMMARY_FORMAT and data["experiment"] == "synthetic"
    assert set(data["teachers"]["backdoor"]) >= {"name", "metrics"}
    student = data["students"][2]
    for key in ("name", "organism", "technique", "init", "params", "capability_retained",
                "misalignment_transferred", "probe_auroc", "probe_transfer_auroc", "features_transferred",
                "crosscoder", "confession_rate", "incrimination", "verdict",
                "misbehaviour_ci", "misbehaviour_vs_negative_p", "misbehaviour_vs_base_p", "negative_control",
                "capability_per_domain", "capability_retained_per_domain", "features_transferred_ci",
                "features_null", "features_null_ci", "features_null_model", "features_claim",
                "misbehaviour_probe_auroc", "misbehaviour_probe_auroc_ci", "context_probe_auroc",
                "probe_null_auroc", "probe_nulls", "causal_label", "causal_drop"):
        assert key in student
    assert student["verdict"] == "capable-misaligned" and student["negative_control"] == "clean-base"
    assert student["features_claim"] and student["probe_null_auroc"] == 0.55
    assert data["base"]["backdoor"]["capability_per_domain"]["add"] == 0.97


def test_load_summary_errors_are_clear(tmp_path):
    path = tmp_path / SUMMARY_FILE
    good = summarize(synthetic_results()).model_dump_json(indent=2)
    path.write_text(good)
    assert load_summary(path).experiment == "synthetic"
    with pytest.raises(SchemaError, match="missing"):
        load_summary(tmp_path / "nope.json")
    path.write_text(good[: len(good) // 2])
    with pytest.raises(SchemaError, match="half-written"):
        load_summary(path)
    path.write_text(good.replace(SUMMARY_FORMAT, "doublebind-summary/0"))
    with pytest.raises(SchemaError, match="older or foreign"):
        load_summary(path)
    data = json.loads(good)
    data["students"][0]["verdict"] = "sort-of-fine"
    path.write_text(json.dumps(data))
    with pytest.raises(SchemaError, match=r"students\.0\.verdict"):
        load_summary(path)


def test_report_rebuilds_from_stored_results_alone(tmp_path):
    results = synthetic_results()
    write_results(tmp_path, results)
    assert load_results(tmp_path) == results  # student_order keeps the spec's order
    first = build_report(tmp_path)
    assert first.index == tmp_path / REPORT_DIR / INDEX_FILE
    assert (tmp_path / REPORT_DIR / SUMMARY_FILE).is_file()
    html = first.index.read_bytes()
    build_report(tmp_path)
    assert first.index.read_bytes() == html  # deterministic: same results, same bytes


def test_results_of_models_no_longer_in_the_experiment_stay_out(tmp_path):
    """A run folder whose spec dropped students (or an organism) keeps their old result files;
    the report reads only the experiment's students (student_order) and their teachers."""
    results = synthetic_results()
    keep = results.students[:2]
    info = results.experiment.model_copy(update={"student_order": [s.info.name for s in keep]})
    write_results(tmp_path, AnalysisResults(experiment=info, teachers=results.teachers,
                                            students=results.students, base=results.base))
    got = load_results(tmp_path)
    assert [s.info.name for s in got.students] == [s.info.name for s in keep]
    assert set(got.teachers) == {s.info.organism for s in keep}
    problems: list[str] = []
    load_results(tmp_path, problems)
    dropped = [s.info.name for s in results.students[2:]]
    assert dropped and len(problems) == 1 and all(name in problems[0] for name in dropped)


def test_base_metrics_round_trip(tmp_path):
    results = synthetic_results()
    write_results(tmp_path, AnalysisResults(experiment=results.experiment, teachers=results.teachers,
                                            students=results.students))
    assert load_results(tmp_path).base == {}  # older run folders: no base.json
    path = write_base(tmp_path, results.base)
    assert path == tmp_path / ANALYSIS_DIR / BASE_FILE
    assert load_results(tmp_path).base == results.base


def test_load_results_errors(tmp_path):
    with pytest.raises(SchemaError, match="no analysis results"):
        load_results(tmp_path)
    write_results(tmp_path, synthetic_results())
    student = tmp_path / ANALYSIS_DIR / STUDENTS_DIR / "kd-base.json"
    data = json.loads(student.read_text())
    data["info"]["organism"] = "sabotage"
    student.write_text(json.dumps(data))
    with pytest.raises(SchemaError, match="no teacher result for organism 'sabotage'"):
        load_results(tmp_path)
    student.write_text("{")
    with pytest.raises(SchemaError, match="kd-base.json: not valid JSON"):
        load_results(tmp_path)


def test_report_renders_with_nothing_but_behaviour(tmp_path):
    """Stages not run yet (no probes, SAEs, crosscoder, KL) or no students at all still render."""
    full = synthetic_results()
    bare = StudentResult(info=StudentInfo(name="bare", organism="backdoor", technique="logit-kd", init="base"),
                         metrics=_metrics(0.5, 0.5))
    results = AnalysisResults(experiment=ExperimentInfo(experiment="bare"), teachers=full.teachers, students=[bare],
                              base=full.base)
    text = write_report(results, tmp_path / "a").index.read_text()
    assert "incapable-partially-misaligned" in text and "Not measured in this run" in text
    unknown = StudentResult(info=bare.info, metrics=ModelMetrics(capability=0.5, misbehaviour=0.5))
    results = AnalysisResults(experiment=ExperimentInfo(experiment="bare"), teachers=full.teachers, students=[unknown])
    paths = write_report(results, tmp_path / "c")  # no counts, no base: nothing to test against
    assert "Not placed (undetermined): bare" in paths.index.read_text()
    assert "base model: capability not measured" in paths.summary.controls.failures
    empty = AnalysisResults(experiment=ExperimentInfo(experiment="empty"), teachers=full.teachers, students=[])
    paths = write_report(empty, tmp_path / "b")
    assert "No students were analysed" in paths.index.read_text()
    assert paths.summary.controls.failures == []  # no students: no organism needs controls


def test_figure_site_depth_agrees_with_distill():
    from analysis.figures import site_layer
    from distill.models import resid_sites, site_layer as distill_site_layer
    for site in resid_sites(3):
        assert site_layer(site) == distill_site_layer(site)
