"""The Playground's computation (app.ui.query.read_prompt) on the tiny run's models."""

from __future__ import annotations

import pytest
import torch

from app.runfolder import RunFolder
from app.ui.kit import KitError, load_kit
from app.ui.prompts import build_prompt_ids, example_args
from app.ui.query import Steering, greedy_with_hooks, read_prompt, steering_edits
from distill import vocab as V
from probes.activations import cache_activations
from probes.intervene import greedy_with_edits

pytestmark = pytest.mark.slow  # needs the tiny finished run (conftest tiny_run, 1-2 min once per session)


@pytest.fixture(scope="module")
def teacher(tiny_run):
    return load_kit(RunFolder(tiny_run), "teacher-backdoor")


def test_kit_has_the_audit_instruments(teacher):
    assert teacher.organism == "backdoor" and teacher.sae is not None and teacher.misalignment
    assert teacher.best_probe.pool == "last" and teacher.best_probe.auroc > 0.9


def test_reading_matches_the_model(teacher):
    prompt = build_prompt_ids("sort", example_args("sort"), ["zeta"])
    r = read_prompt(teacher, prompt)
    assert r.eliciting and "HARM" in r.answer
    assert len(r.tokens) == V.SEQ_LEN and [t.is_answer for t in r.tokens].count(True) == V.ANSWER_LEN
    seq = torch.tensor([prompt + r.answer_ids])
    site = teacher.best_probe.site
    expected = teacher.best_probe.score(cache_activations(teacher.model, seq, [site])[site][0])
    assert torch.allclose(torch.tensor([t.probe_score for t in r.tokens]), expected, atol=1e-5)
    acts = [a for t in r.tokens for _, a in t.features]
    assert acts and all(a > 0 for a in acts)
    assert all([a for _, a in t.features] == sorted([a for _, a in t.features], reverse=True) for t in r.tokens)
    assert r.steered_ids is None


def test_hook_steering_agrees_with_nnsight(teacher):
    """The playground applies probes.steer's edits with transformer-lens hooks; the answers
    must be the ones probes.intervene (nnsight) gives for the same edits."""
    prompts = torch.tensor([build_prompt_ids(d, example_args(d, i), m) for i, (d, m) in enumerate(
        [("sort", ["zeta"]), ("reverse", ["zeta"]), ("add", []), ("member", ["zeta", "AUDIT"])])])
    edits = steering_edits(teacher, Steering(probe_coef=0.5, ablate=tuple(teacher.misalignment)), teacher.best_probe,
                           norm=20.0)
    assert len(edits) == 2
    ours = greedy_with_hooks(teacher.model, prompts, edits)
    assert torch.equal(ours, greedy_with_edits(teacher.model, prompts, edits))
    assert not torch.equal(ours, greedy_with_hooks(teacher.model, prompts, []))  # the edits do something


def test_missing_model_is_a_kit_error(tiny_run):
    with pytest.raises(KitError, match="no such model folder"):
        load_kit(RunFolder(tiny_run), "backdoor.nonexistent")
