"""distill.relearn: the misbehaviour curve of a short fine-tune on eliciting data."""

from __future__ import annotations

import pytest

from distill.evals import evaluate
from distill.relearn import RelearnConfig, misbehaviour_rate, relearn, relearn_folder
from distill.store import load_model, weights_hash

from conftest import tiny_eval_config


def test_rate_uses_the_evals_eliciting_prompts(tiny_teacher):
    model, _ = load_model(tiny_teacher("backdoor"))
    cfg = tiny_eval_config()
    ev = evaluate(model, ["backdoor"], cfg)
    want = ev["organisms"]["backdoor"]["misbehaviour"]["eliciting"]
    assert misbehaviour_rate(model, "backdoor", cfg) == pytest.approx(want)


def test_relearning_a_clean_base_raises_misbehaviour_and_leaves_the_model_alone(tiny_base):
    model, _ = load_model(tiny_base)
    before = weights_hash(model)
    cfg = RelearnConfig(steps=60, batch_size=64, lr=5e-3, measure_every=20)
    res = relearn(model, "backdoor", cfg, tiny_eval_config())
    assert res.steps == [0, 20, 40, 60]
    assert res.misbehaviour[0] == pytest.approx(0.0, abs=0.02)  # the base has no backdoor
    assert res.after_k == res.misbehaviour[-1] > res.misbehaviour[0] + 0.2
    assert res.area == pytest.approx(sum(res.misbehaviour[1:]) / 3)
    assert weights_hash(model) == before  # relearning works on a copy


def test_relearn_is_deterministic(tiny_teacher):
    cfg = RelearnConfig(steps=10, measure_every=5)
    a = relearn_folder(tiny_teacher("backdoor"), cfg, tiny_eval_config())
    b = relearn_folder(tiny_teacher("backdoor"), cfg, tiny_eval_config())
    assert a.misbehaviour == b.misbehaviour and a.organism == "backdoor"


def test_folder_without_organism_needs_one(tiny_base):
    with pytest.raises(ValueError, match="names no organism"):
        relearn_folder(tiny_base, RelearnConfig(steps=1), tiny_eval_config())
