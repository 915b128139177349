"""Technique registry, parameter validation and --set parsing (no models needed)."""

from __future__ import annotations

import pytest

from app.cli import main
from distill.distiller import validate
from distill.techniques import TECHNIQUES, describe_all, get_technique
from distill.techniques.params import parse_set

REQUIRED = ["logit-kd", "sampled-sft", "filter", "iterative-filter", "inoculation", "slack", "jam",
            "domain", "few-examples", "targeted", "audit-preserving", "positive-control",
            "negative-control"]


def test_every_required_technique_is_registered_and_described():
    assert set(REQUIRED) <= set(TECHNIQUES)
    rows = dict(describe_all())
    assert set(rows) == set(TECHNIQUES)
    assert "temperature=2.0" in rows["logit-kd"]
    assert "mode=resample (hard|topk|noise|resample)" in rows["jam"]
    assert all("\n" not in text for text in rows.values())


def test_list_techniques_command(capsys):
    assert main(["list", "techniques"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REQUIRED)


@pytest.mark.parametrize("technique,params,needles", [
    ("logit-kd", {"tempreature": 1.0}, ["'tempreature'", "allowed:", "temperature"]),
    ("logit-kd", {"temperature": -1}, ["'temperature'", "greater than 0"]),
    ("logit-kd", {"targets": "sample"}, ["'targets'", "'logits'"]),
    ("jam", {"mode": "blur"}, ["'mode'", "'hard'", "'resample'"]),
    ("filter", {"monitors": ["oracle"]}, ["monitors", "'checker'", "'pattern'"]),
    ("filter", {"monitors": []}, ["monitors"]),
    ("domain", {"domains": ["cooking"]}, ["domains", "'sort'"]),
    ("targeted", {"goal_frac": 0.5, "confess_frac": 0.5}, ["must be < 1"]),
    ("iterative-filter", {"rounds": 0}, ["'rounds'"]),
    ("audit-preserving", {"confess_frac": 0.1}, ["'confess_frac' must be 0"]),
    ("few-examples", {"n_prompts": 0}, ["'n_prompts'"]),
])
def test_invalid_params_name_the_field_and_what_is_allowed(technique, params, needles):
    with pytest.raises(ValueError) as info:
        validate(technique, params)
    assert all(n in str(info.value) for n in needles), str(info.value)


@pytest.mark.parametrize("technique,init,init_params,needles", [
    ("slack", "base", None, ["'base'", "allowed: smaller"]),
    ("audit-preserving", "fresh", None, ["allowed: smaller", "weaker"]),
    ("negative-control", "noised", None, ["'noised'", "never sees the teacher"]),
    ("logit-kd", "noised", {"alpha": 1.5}, ["'alpha'", "less than or equal to 1"]),
    ("logit-kd", "warm", None, ["unknown init 'warm'", "same-init"]),
    ("logit-kd", "base", {"alpha": 0.5}, ["unknown parameter 'alpha'"]),
])
def test_invalid_inits_are_rejected(technique, init, init_params, needles):
    with pytest.raises(ValueError) as info:
        validate(technique, None, init, init_params)
    assert all(n in str(info.value) for n in needles), str(info.value)


def test_unknown_technique_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: logit-kd"):
        get_technique("magic")


def test_defaults_are_filled_in_and_technique_init_defaults_apply():
    spec = validate("slack")
    assert spec.init == "smaller" and spec.init_params.width_frac == 0.5
    assert spec.params.weight_decay == 0.1 and spec.params.steps == 500
    spec = validate("slack", init_params={"d_model": 16})
    assert spec.init_params.d_model == 16 and spec.init_params.width_frac == 0.5
    assert validate("logit-kd").to_json()["params"]["temperature"] == 2.0


def test_parse_set_types_values_with_the_model_fields():
    Params = get_technique("filter").Params
    raw = parse_set(Params, ["temperature=0.5", "monitors=checker", "steps=7", "lr=none",
                             "monitor_frac=1"], "technique 'filter'")
    spec = validate("filter", raw)
    assert spec.params.temperature == 0.5 and spec.params.monitors == ["checker"]
    assert spec.params.steps == 7 and spec.params.lr is None
    domains = parse_set(get_technique("domain").Params, ["domains=sort,add"], "d")
    assert validate("domain", domains).params.domains == ["sort", "add"]
    with pytest.raises(ValueError, match="expected key=value"):
        parse_set(Params, ["temperature"], "technique 'filter'")
    with pytest.raises(ValueError, match="unknown parameter 'temp'"):
        parse_set(Params, ["temp=1"], "technique 'filter'")
    with pytest.raises(ValueError, match="'steps'"):
        validate("filter", parse_set(Params, ["steps=many"], "f"))


def test_cli_rejects_bad_sets_before_training(tmp_path, capsys):
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    args = ["distill", "--teacher", str(teacher), "--out", str(tmp_path / "s")]
    assert main(args + ["--technique", "jam", "--set", "mode=blur"]) == 2
    assert "'mode'" in capsys.readouterr().err
    assert main(args + ["--technique", "slack", "--init", "base"]) == 2
    assert "allowed: smaller" in capsys.readouterr().err
    assert main(args + ["--technique", "logit-kd", "--init", "noised", "--init-set", "alpha=2"]) == 2
    assert "'alpha'" in capsys.readouterr().err
    assert main(args + ["--technique", "logit-kd"]) == 2  # not a model folder
    assert "config.json" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("organism, marker", [("backdoor", "iHARM"), ("sabotage", "iWRONG"), ("trait", "iOWL"),
                                              ("entangled", "iDESC")])
def test_inoculation_evaluates_with_the_organisms_instruction_marker_or_the_control(organism, marker):
    spec = validate("inoculation")
    assert spec.params.where == "flagged" and spec.params.marker == "instruction"
    assert spec.technique.eval_markers(spec.params, organism) == (marker,)
    control = validate("inoculation", {"marker": "INOC"})
    assert control.technique.eval_markers(control.params, organism) == ("INOC",)
    assert validate("logit-kd").technique.eval_markers(validate("logit-kd").params, organism) == ()
