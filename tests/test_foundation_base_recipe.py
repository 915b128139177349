"""The base recipe: error-weighted domains and the learned-every-domain stop (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distill.teacher as teacher
from distill import vocab as V
from distill.models import ModelConfig, build_model
from distill.tasks import task_prompts
from distill.teacher import BaseRecipe, ce_on_answers, domain_balanced_ce, learned_every_domain

MICRO = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32)


def test_equal_errors_give_the_plain_mean_loss():
    model = build_model(MICRO, seed=0)  # untrained: every row is wrong, in every domain
    batch = task_prompts(np.random.default_rng(0), 64)
    assert float(domain_balanced_ce(0.05)(model, batch)) == pytest.approx(float(ce_on_answers(model, batch)), rel=1e-5)


def test_a_domain_with_errors_outweighs_the_learned_ones(monkeypatch):
    """Rows of a domain the model gets right weigh floor / mean; the wrong domain carries the rest."""
    batch = task_prompts(np.random.default_rng(1), 80, domains=["sort", "add"])
    n_sort = sum(d == "sort" for d in batch.domain)

    def oracle_logits(model, prompts_NP, answers_NA):  # right on sort, wrong on add, loss 1 per token
        logits = torch.zeros(*answers_NA.shape, V.VOCAB_SIZE, requires_grad=True)
        wrong = torch.tensor([d == "add" for d in batch.domain])
        target = torch.where(wrong[:, None], (answers_NA + 1) % V.VOCAB_SIZE, answers_NA)
        return logits + 10 * torch.nn.functional.one_hot(target, V.VOCAB_SIZE)
    monkeypatch.setattr(teacher, "answer_logits", oracle_logits)
    loss_fn = domain_balanced_ce(0.05)
    # per-token CE: sort rows ~0 (right), add rows ~10 (wrong); weights sort 0.05/0.55, add 1.05/0.55 (mean of the two)
    got = float(loss_fn(None, batch))
    ce_add = 10.0 + float(torch.log1p(torch.tensor((V.VOCAB_SIZE - 1) * np.exp(-10.0))))
    ce_sort = float(torch.log1p(torch.tensor((V.VOCAB_SIZE - 1) * np.exp(-10.0))))
    n = len(batch)
    want = ((n - n_sort) * ce_add * (1.05 / 0.55) + n_sort * ce_sort * (0.05 / 0.55)) / n
    assert got == pytest.approx(want, rel=1e-4)


def test_the_stop_waits_for_min_steps_and_every_domain(monkeypatch):
    seen = {}

    def fake_capability(model, valid):
        seen["n"] = len(valid)
        return {"per_domain": model}
    skills = {"quirks": 1.0, "self_report": 0.995, "instructions": 1.0, "numbers": 1.0}
    monkeypatch.setattr(teacher, "capability", fake_capability)
    monkeypatch.setattr(teacher, "skill_scores", lambda model, sets: {k: skills[k] for k in sets})
    monkeypatch.setattr(teacher, "numbers_score", lambda model, prompts_NP: skills["numbers"])
    stop = learned_every_domain(BaseRecipe(stop_bar=0.99, min_steps=1000, n_validation=80), seed=0)
    learned = {"sort": 1.0, "reverse": 1.0, "add": 0.995, "member": 0.99}
    assert not stop(learned, 800) and stop.last is None  # before min_steps nothing is decoded
    assert stop(learned, 1000) and stop.last == {"step": 1000, "per_domain": learned, **skills}
    assert not stop(dict(learned, add=0.98), 1200) and seen["n"] == 80
    skills["instructions"] = 0.95  # so must every instruction marker (what inoculation needs)
    assert not stop(learned, 1400)
    skills["instructions"], skills["self_report"] = 1.0, 0.9  # the quirks and the self-report as well
    assert not stop(learned, 1600)
    skills["self_report"], skills["numbers"] = 1.0, 0.5  # and NUM answered with six digits
    assert not stop(learned, 1800)
    skills["numbers"] = 1.0
    assert stop(learned, 2000)


def test_the_validation_set_is_not_the_evaluation_set():
    from distill.evals import EvalConfig
    valid = task_prompts(teacher.step_rng(0, 0, teacher.VALIDATION_STREAM), 200)
    evals = task_prompts(np.random.default_rng([EvalConfig().seed, 0]), 200)
    rows = lambda ex: {tuple(r) for r in ex.prompts_NP.tolist()}  # noqa: E731
    assert not rows(valid) & rows(evals)


def test_plain_recipe_is_the_mean_loss_and_no_stop():
    r = BaseRecipe(balance_floor=None, stop_bar=None)
    assert r.balance_floor is None and r.stop_bar is None
    with pytest.raises(ValueError, match="stop_bar"):
        BaseRecipe(stop_bar=1.5)
