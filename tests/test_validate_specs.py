"""The validation specs load, validate, and every finding term names a real model and metric."""

from __future__ import annotations

import shutil

import pytest

from app.spec import SpecError
from app.validation.measure import METRICS
from app.validation.spec import (VALIDATE_DIR, check_plan, load_findings, load_validation, model_ids)


@pytest.mark.parametrize("mode", ["default", "quick"])
def test_modes_load_and_every_term_resolves(mode):
    vspec, defs = load_validation(mode), load_findings()
    spec = check_plan(vspec, defs, list(METRICS))
    assert vspec.mode == mode
    ids = set(model_ids(spec))
    assert {"teacher-trait", "teacher-backdoor", "teacher-sabotage"} <= ids
    assert all(m in ids for m in vspec.relearn.models)


def test_findings_cover_the_eight_issue_findings_and_the_preconditions():
    groups = {d.id.rstrip("abcdefgh") for d in load_findings()}
    assert groups == {str(i) for i in range(0, 9)}


def test_seed_spec_sets_seed_and_data_seed_but_keeps_explicit_params():
    vspec = load_validation("quick")
    spec = vspec.seed_spec(2)
    assert spec.seed == 2 and spec.name.endswith("seed2")
    assert all(st.params["data_seed"] == 2 for st in spec.students)
    assert all(st.params["steps"] == vspec.student_defaults["steps"] for st in spec.students)
    kd = next(st for st in spec.students if st.label == "inoculation-kd")
    assert kd.params["targets"] == "logits" and kd.params["where"] == "all"


def test_default_and_quick_make_the_same_models():
    d = model_ids(load_validation("default").seed_spec(0))
    q = model_ids(load_validation("quick").seed_spec(0))
    assert d == q


def test_unknown_term_is_reported_with_the_allowed_values(tmp_path):
    for f in VALIDATE_DIR.glob("*.toml"):
        shutil.copy(f, tmp_path / f.name)
    text = (tmp_path / "findings.toml").read_text()
    (tmp_path / "findings.toml").write_text(
        text.replace('"trait.logit-kd-fresh:trait_prob"]', '"trait.nobody:trait_prob"]', 1)
            .replace('"teacher-trait:probe_auroc"', '"teacher-trait:probe_aucroc"', 1))
    with pytest.raises(SpecError) as exc:
        check_plan(load_validation("default", tmp_path), load_findings(tmp_path), list(METRICS))
    msg = str(exc.value)
    assert "'trait.nobody:trait_prob' names no model" in msg
    assert "unknown metric 'probe_aucroc'" in msg and "probe_auroc" in msg


def test_bad_finding_definition_names_the_field(tmp_path):
    (tmp_path / "findings.toml").write_text(
        '[[findings]]\nid = "1a"\ntitle = "t"\nclaim = "c"\nsource = "s"\nop = "median"\n'
        'terms = ["a:b"]\ndirection = "greater"\nthreshold = 0\n')
    with pytest.raises(SpecError, match=r"findings\[0\]\.op"):
        load_findings(tmp_path)


def test_unknown_mode_lists_the_modes():
    with pytest.raises(SpecError, match="allowed: default, quick"):
        load_validation("huge")
