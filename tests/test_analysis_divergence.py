"""Per-token KL between teacher and student on eliciting vs clean prompts."""

from __future__ import annotations

import numpy as np
import torch

from analysis.divergence import answer_kl, kl_result
from distill import vocab as V
from distill.models import build_model
from distill.organisms import get_organism
from conftest import tiny_model_config


def test_kl_is_zero_against_itself_and_positive_against_another_model():
    org = get_organism("backdoor")
    rng = np.random.default_rng(0)
    eliciting, clean = org.eliciting(rng, 12).prompts_NP, org.clean(rng, 12).prompts_NP
    teacher, other = build_model(tiny_model_config(), 0), build_model(tiny_model_config(), 1)
    same = answer_kl(teacher, teacher, eliciting)
    assert same.shape == (12, V.ANSWER_LEN)
    assert torch.allclose(same, torch.zeros_like(same), atol=1e-5)
    diff = answer_kl(teacher, other, clean, batch_size=5)  # batching must not change the result
    assert diff.shape == (12, V.ANSWER_LEN) and (diff > 0).all()
    assert torch.allclose(diff, answer_kl(teacher, other, clean), atol=1e-5)
    res = kl_result(teacher, other, eliciting, clean)
    assert res.eliciting > 0 and res.clean > 0 and len(res.clean_by_position) == V.ANSWER_LEN
    assert abs(res.clean - float(diff.mean())) < 1e-5
