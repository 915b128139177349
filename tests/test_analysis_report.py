"""Report: self-contained HTML from stored results, summary.json round trip and clear errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from analysis.report import INDEX_FILE, REPORT_DIR, SUMMARY_FILE, build_report, write_report
from analysis.results import ANALYSIS_DIR, STUDENTS_DIR, load_results, write_results
from analysis.schema import (SUMMARY_FORMAT, AnalysisResults, CKAMatrix, CrosscoderResult,
                             ExperimentInfo, FeatureMap, FeatureMatchRow, KLResult, ModelMetrics,
                             SchemaError, StudentInfo, StudentResult, TeacherResult, load_summary)
from analysis.transfer import summarize

SITES = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post"]


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
        metrics=ModelMetrics(capability=cap, misbehaviour=mis, misbehaviour_clean=0.0,
                             feature_salience=0.5 + 0.45 * strength),
        probe_auroc_by_site=probe, probe_transfer_by_site={s: v - 0.05 for s, v in probe.items()},
        cka=CKAMatrix(teacher_sites=SITES, student_sites=SITES,  # row 0: constant site, CKA undefined
                      values=[[None] * 3] + [[float(np.clip(1 - 0.3 * abs(i - j) - 0.2 * (1 - strength), 0, 1))
                                              for j in range(3)] for i in range(1, 3)]),
        feature_map=_feature_map(strength, misaligned, rng),
        crosscoder=_crosscoder(0.4 * (1 - strength), rng),
        kl=KLResult(eliciting=2.0 * (1 - mis), clean=0.01))


def synthetic_results(controls_ok: bool = True) -> AnalysisResults:
    """A small hand-made run: one backdoor teacher, two controls and three students."""
    rng = np.random.default_rng(0)
    teacher = TeacherResult(name="teacher-backdoor", organism="backdoor",
                            metrics=ModelMetrics(capability=0.98, misbehaviour=1.0, misbehaviour_clean=0.0,
                                                 feature_salience=0.97),
                            probe_auroc_by_site={s: 0.8 + 0.09 * i for i, s in enumerate(SITES)})
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
    return AnalysisResults(experiment=info,
                           teachers={"backdoor": teacher}, students=students)


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


def test_failed_controls_give_a_loud_banner(tmp_path):
    paths = write_report(synthetic_results(controls_ok=False), tmp_path)
    text = paths.index.read_text()
    assert not paths.summary.controls.trustworthy
    banner = text.index("This run is not trustworthy")
    assert banner < text.index("id='plane'")
    assert "positive control copy-teacher is capable-aligned, expected capable-misaligned" in text


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
                "crosscoder", "confession_rate", "incrimination", "verdict"):
        assert key in student
    assert student["verdict"] == "capable-misaligned"


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
                         metrics=ModelMetrics(capability=0.5, misbehaviour=0.5))
    results = AnalysisResults(experiment=ExperimentInfo(experiment="bare"), teachers=full.teachers, students=[bare])
    text = write_report(results, tmp_path / "a").index.read_text()
    assert "incapable-misaligned" in text and "Not measured in this run" in text
    empty = AnalysisResults(experiment=ExperimentInfo(experiment="empty"), teachers=full.teachers, students=[])
    paths = write_report(empty, tmp_path / "b")
    assert "No students were analysed" in paths.index.read_text()
    assert paths.summary.controls.failures == []  # no students: no organism needs controls


def test_figure_site_depth_agrees_with_distill():
    from analysis.figures import site_layer
    from distill.models import resid_sites, site_layer as distill_site_layer
    for site in resid_sites(3):
        assert site_layer(site) == distill_site_layer(site)
