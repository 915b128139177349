"""BatchTopK crosscoder: identical models share every latent; planted teacher-only features
get teacher-only latents; the split logic on hand-made norms."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.crosscoder import (CrosscoderConfig, crosscoder_result, latent_activations, latent_class,
                                 shares, train_crosscoder)
from analysis.matching import activation_correlation
from analysis.schema import CrosscoderResult, VerdictConfig

N, D, F = 2000, 64, 40


def _world(seed: int):
    """Sparse features with random unit directions: activations [N, F] and teacher acts [N, D]."""
    rng = np.random.default_rng(seed)
    acts = rng.exponential(1.0, (N, F)) * (rng.random((N, F)) < 0.08)
    dirs = rng.normal(size=(F, D))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return rng, acts, acts @ dirs, dirs


def test_two_copies_of_the_same_activations_share_all_latents():
    _, acts, x, _ = _world(0)
    fit = train_crosscoder(x, x.copy())
    assert fit.seconds < 20 and fit.fvu_teacher < 0.05 and fit.fvu_student < 0.05
    res = crosscoder_result(fit, x, x, acts[:, 0] > 0, teacher_site="t", student_site="s")
    split = shares(res)
    assert split.n_live >= 20
    assert split.shared >= 0.95
    live = [r for r in res.relative_norm if r is not None]
    assert abs(np.mean(live) - 0.5) < 0.03
    assert split.misalignment["shared"] >= 1 and split.misalignment["teacher-only"] == 0
    # rows as 2 positions per prompt: a latent's prompt score is its max over the positions
    per_prompt = (acts[:, 0] > 0).reshape(-1, 2).any(1)
    pooled = crosscoder_result(fit, x, x, per_prompt, teacher_site="t", student_site="s", rows_per_prompt=2)
    assert len(pooled.latent_auroc) == res.n_latents and max(a for a in pooled.latent_auroc if a) > 0.9
    with pytest.raises(ValueError, match="prompts of 3 rows"):
        crosscoder_result(fit, x, x, per_prompt, teacher_site="t", student_site="s", rows_per_prompt=3)


def test_planted_teacher_only_features_get_teacher_only_latents():
    rng, acts, x, dirs = _world(1)
    n_only = 6  # features 0..5 exist only in the teacher; the student is the rest, rotated
    q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    xs = acts[:, n_only:] @ dirs[n_only:] @ q
    fit = train_crosscoder(x, xs)
    labels = acts[:, 0] > 0  # "eliciting" = teacher-only feature 0 is active
    res = crosscoder_result(fit, x, xs, labels, teacher_site="t", student_site="s")
    corr = activation_correlation(acts, latent_activations(fit, x, xs))
    rel = np.array([np.nan if r is None else r for r in res.relative_norm])
    best = corr.argmax(1)
    assert (rel[best[:n_only]] < 0.3).all()
    assert ((rel[best[n_only:]] > 0.4) & (rel[best[n_only:]] < 0.6)).all()
    assert shares(res).misalignment["teacher-only"] >= 1


def test_latent_classes_and_shares_from_hand_made_norms():
    assert [latent_class(r, 0.3, 0.7) for r in (0.0, 0.29, 0.3, 0.5, 0.7, 0.71, None)] == [
        "teacher-only", "teacher-only", "shared", "shared", "shared", "student-only", None]
    res = CrosscoderResult(teacher_site="t", student_site="s", n_latents=6, k=4,
                           relative_norm=[0.1, 0.5, 0.5, 0.9, 0.6, None],
                           latent_auroc=[0.95, 0.9, 0.5, 0.85, 0.7, None],
                           fvu_teacher=0.1, fvu_student=0.1, train_seconds=1.0)
    split = shares(res)
    assert (split.teacher_only, split.shared, split.student_only, split.n_live) == (0.2, 0.6, 0.2, 5)
    assert split.misalignment == {"teacher-only": 1, "shared": 1, "student-only": 1}
    assert shares(res, VerdictConfig(latent_auroc_min=0.92)).misalignment == {
        "teacher-only": 1, "shared": 0, "student-only": 0}


def test_unpaired_rows_are_refused():
    with pytest.raises(ValueError, match="paired rows"):
        train_crosscoder(np.zeros((10, 4)), np.zeros((9, 4)), CrosscoderConfig(steps=1))
