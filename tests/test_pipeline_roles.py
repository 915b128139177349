"""Who each model is measured against (references, nulls, negative controls), and that the run,
the report and the app show one feature definition."""

from __future__ import annotations

import json

import pytest

from app.pipeline import Pipeline
from app.spec import load_spec, parse_spec


def test_every_student_init_gets_its_own_negative_control():
    spec = load_spec("default")
    labels = [s.label for s in spec.all_students()]
    assert labels[:len(spec.students)] == [s.label for s in spec.students]  # the spec's own first
    assert set(labels[len(spec.students):]) == {"negative-control-fresh", "negative-control-smaller",
                                                "negative-control-fresh-null", "negative-control-smaller-null"}
    nulls = {s.label: s for s in spec.all_students()}
    assert nulls["negative-control-fresh-null"].init == "fresh"
    assert nulls["negative-control-fresh-null"].params["data_seed"] != nulls["negative-control-fresh"].params.get("data_seed", 0)
    by = {s.label: s for s in spec.all_students()}
    assert spec.reference_of(by["logit-kd-fresh"]).label == "negative-control-fresh"
    assert spec.reference_of(by["slack"]).label == "negative-control-smaller"
    assert spec.reference_of(by["logit-kd"]).label == "negative-control"


def test_noised_students_share_the_base_init_control():
    spec = parse_spec({"name": "x", "organisms": ["backdoor"], "students": [
        {"technique": "logit-kd", "init": "noised", "init_params": {"alpha": 0.3}}]})
    added = spec.all_students()[1:]
    assert [(s.technique, s.init, s.label) for s in added] == [("negative-control", "base", "negative-control")]


def test_a_numbers_control_is_only_the_reference_of_numbers_students():
    """A numbers-only negative control forgets the tasks: it must never become the diffing
    reference of a plain student, nor stand in for the plain control of its init."""
    spec = parse_spec({"name": "x", "organisms": ["trait"], "students": [
        {"technique": "negative-control", "name": "numbers-null", "params": {"numbers_frac": 1.0}},
        {"technique": "logit-kd"},
        {"technique": "sampled-sft", "name": "numbers-sft", "params": {"numbers_frac": 1.0}},
        {"technique": "sampled-sft", "name": "numbers-fresh", "init": "fresh", "params": {"numbers_frac": 1.0}}]})
    by = {s.label: s for s in spec.all_students()}
    assert by["negative-control"].params == {}  # the plain base-init control is still added
    assert spec.reference_of(by["logit-kd"]).label == "negative-control"
    assert spec.reference_of(by["numbers-sft"]).label == "numbers-null"
    assert spec.reference_of(by["numbers-fresh"]).label == "negative-control-fresh"  # no fresh numbers one


def test_roles_reference_and_null_per_init(tmp_path):
    p = Pipeline(load_spec("default"), tmp_path)
    st = {s.label: s for s in p.spec.all_students()}
    assert p.roles("backdoor", st["logit-kd"]) == {
        "teacher": "teacher-backdoor", "teacher_reference": "base@backdoor",
        "reference": "backdoor.negative-control", "null": "base@backdoor"}
    fresh = p.roles("sabotage", st["logit-kd-fresh"])
    assert fresh["reference"] == "sabotage.negative-control-fresh"
    assert fresh["null"] == "sabotage.negative-control-fresh-null"  # another clean model of the init
    refs = {m: r for m, r, _ in p.references()}
    assert refs["teacher-backdoor"] == "base@backdoor"
    assert refs["base@sabotage"] == "sabotage.negative-control"  # the base as the null of base-init students
    assert refs["sabotage.negative-control"] == "sabotage.negative-control"


@pytest.mark.slow
def test_one_feature_definition_in_record_summary_and_app(tiny_run):
    """The teacher's misalignment features are the same ids in its stored record, the summary's
    calibration (the same code the students go through) and the app's feature set."""
    from app.ui.featureset import model_features
    from probes.diffing import load_feature_record
    record = load_feature_record(tiny_run / "probes" / "teacher-backdoor")
    summary = json.loads((tiny_run / "report" / "summary.json").read_text())
    teacher = summary["teachers"]["backdoor"]
    assert record["reference"] == "base@backdoor"
    assert teacher["calibration"]["self"]["teacher_features"] == record["misalignment"]
    shown = model_features(tiny_run / "probes" / "teacher-backdoor", record["site"])
    assert list(shown.misalignment) == record["misalignment"] and list(shown.context) == record["context"]
    assert not set(record["misalignment"]) & set(record["context"])
    students = {r["name"]: r for r in summary["students"]}
    pos = json.loads((tiny_run / "analysis" / "students" / "backdoor.positive-control.json").read_text())
    assert pos["features"]["teacher_features"] == record["misalignment"]
    assert students["backdoor.negative-control"]["features_transferred"] == 0.0
    assert teacher["calibration"]["self"]["score"] == 1.0 and teacher["calibration"]["base"]["score"] == 0.0
