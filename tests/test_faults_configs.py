"""Fault injection on the analysis, probe and relearning configs (issue 15, item 3): a boolean
for a number, inf and an absurd size are refused with the field named, the defaults and every
built-in spec still validate; the crosscoder stops at a non-finite loss; ``--seed`` is bounded."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from analysis.crosscoder import CrosscoderConfig, train_crosscoder
from analysis.feature_transfer import FeatureTransferConfig
from analysis.schema import VerdictConfig
from app.cli import UserError, main
from app.commands.compare import audit_config
from app.spec import SpecError, builtin_specs, load_spec, parse_spec
from app.validation.spec import load_validation
from distill.guards import MAX_SEED, problems
from distill.relearn import RelearnConfig
from distill.train import TrainingDiverged
from probes.diffing import DiffConfig
from probes.linear import ProbeConfig
from probes.steer import BehaviourConfig

INF = float("inf")

# (config, {field: bad value}) -- each bad value would be accepted without the guards: a
# boolean reads as 1 (or 1.0), inf passes a bare lower bound, the sizes had no upper bound.
BOOLEANS = [(ProbeConfig, "seed"), (DiffConfig, "max_features"), (CrosscoderConfig, "steps"),
            (FeatureTransferConfig, "n_boot"), (RelearnConfig, "steps"), (BehaviourConfig, "n_clean"),
            (VerdictConfig, "capable_min")]
INFS = [(ProbeConfig, "C"), (DiffConfig, "min_effect"), (CrosscoderConfig, "lr"), (RelearnConfig, "lr")]
BOUNDED_INFS = [(FeatureTransferConfig, "corr_min"), (BehaviourConfig, "n_eliciting"),
                (VerdictConfig, "trait_prob_margin")]
"""Configs with no unbounded float: inf is refused by a range (or an int field) as before."""
ABSURD = [(ProbeConfig, "seed", MAX_SEED + 1), (DiffConfig, "max_features", 10**9),
          (DiffConfig, "min_discordant", 10**12), (CrosscoderConfig, "n_latents", 10**9),
          (CrosscoderConfig, "k", 10**9), (CrosscoderConfig, "steps", 10**12),
          (CrosscoderConfig, "batch_size", 10**12), (CrosscoderConfig, "seed", 99999999999999999999),
          (FeatureTransferConfig, "n_boot", 10**12), (FeatureTransferConfig, "n_causal_prompts", 10**12),
          (RelearnConfig, "steps", 10**12), (RelearnConfig, "batch_size", 10**12),
          (RelearnConfig, "measure_every", 10**12), (BehaviourConfig, "n_eliciting", 10**12),
          (BehaviourConfig, "n_clean", 10**12), (BehaviourConfig, "seed", -1)]
CONFIGS = [ProbeConfig, DiffConfig, CrosscoderConfig, FeatureTransferConfig, RelearnConfig,
           BehaviourConfig, VerdictConfig]


def refused(cls, **values) -> str:
    with pytest.raises(ValidationError) as exc:
        cls(**values)
    return " ".join(problems(exc.value))


@pytest.mark.parametrize("cls, field", BOOLEANS, ids=lambda x: getattr(x, "__name__", x))
def test_boolean_for_a_number_refused(cls, field):
    line = refused(cls, **{field: True})
    assert field in line and "not a boolean" in line


@pytest.mark.parametrize("cls, field", INFS, ids=lambda x: getattr(x, "__name__", x))
def test_inf_refused(cls, field):
    assert field in refused(cls, **{field: INF})


@pytest.mark.parametrize("cls, field, value", ABSURD, ids=lambda x: getattr(x, "__name__", str(x)))
def test_absurd_size_refused(cls, field, value):
    assert field in refused(cls, **{field: value})


@pytest.mark.parametrize("cls, field", BOUNDED_INFS, ids=lambda x: getattr(x, "__name__", x))
def test_inf_refused_by_range(cls, field):
    assert field in refused(cls, **{field: INF})


def test_nested_inf_refused():
    assert "min_effect" in refused(FeatureTransferConfig, diff={"min_effect": INF})


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_defaults_validate(cls):
    cfg = cls()
    assert cls(**cfg.model_dump()) == cfg


@pytest.mark.parametrize("name", builtin_specs())
def test_builtin_specs_validate(name):
    assert load_spec(name).students


@pytest.mark.parametrize("mode", ["default", "quick"])
def test_validation_specs_validate(mode):
    assert isinstance(load_validation(mode).relearn.config, RelearnConfig)


def test_spec_section_boolean_refused():
    data = {"name": "t", "organisms": ["backdoor"], "students": [{"technique": "logit-kd"}],
            "analysis": {"crosscoder": {"steps": True}}}
    with pytest.raises(SpecError, match="steps"):
        parse_spec(data)


def test_crosscoder_stops_at_non_finite_loss():
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(32, 4)), rng.normal(size=(32, 4))
    teacher[3, 1] = np.inf
    with pytest.raises(TrainingDiverged, match="step 1 of 5"):
        train_crosscoder(teacher, student, CrosscoderConfig(steps=5, n_latents=8, batch_size=16))


def test_crosscoder_stops_when_lr_blows_up():
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(size=(32, 4)), rng.normal(size=(32, 4))
    with pytest.raises(TrainingDiverged, match="lr=1e"):
        train_crosscoder(teacher, student, CrosscoderConfig(steps=20, n_latents=8, batch_size=16, lr=1e20))


@pytest.mark.parametrize("seed", ["99999999999999999999", str(MAX_SEED + 1)])
def test_cli_seed_out_of_range(capsys, tmp_path, seed):
    argv = ["distill", "--teacher", str(tmp_path), "--technique", "logit-kd", "--seed", seed,
            "--out", str(tmp_path / "s")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seed" in err[0] and str(MAX_SEED) in err[0]


def test_audit_set_reports_every_problem():
    with pytest.raises(UserError) as exc:
        audit_config(["n_pairs=1", "n_top=true", "probe.seed=-1"], [])
    line = str(exc.value)
    assert "\n" not in line
    assert all(f in line for f in ("n_pairs", "n_top", "probe.seed"))
