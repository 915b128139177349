"""Feature matching by activation correlation, decoder cosine, and AUROC helpers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from analysis.matching import (activation_correlation, build_feature_map, compare_features, decoder_cosine,
                               match_features)
from analysis.probe_transfer import probe_transfer_by_site
from analysis.schema import VerdictConfig
from analysis.separation import auroc, column_auroc, misalignment_columns, salience
from analysis.similarity import fit_map


def _sparse_features(rng, n=1500, f=24) -> np.ndarray:
    return rng.exponential(1.0, (n, f)) * (rng.random((n, f)) < 0.1)


def test_matching_recovers_planted_permutation():
    rng = np.random.default_rng(0)
    teacher = _sparse_features(rng)
    perm = rng.permutation(24)  # student feature g is teacher feature perm[g]
    student = teacher[:, perm] * 1.7 + 0.01 * rng.random(teacher.shape)
    match = match_features(teacher, student)
    want = np.argsort(perm)
    assert (match.best_F == want).all() and (match.hungarian_F == want).all()
    assert match.best_corr_F.min() > 0.99


def test_hungarian_is_one_to_one_where_best_match_is_not():
    rng = np.random.default_rng(1)
    teacher = _sparse_features(rng, f=6)
    student = np.concatenate([teacher[:, :5], teacher[:, :1] + 0.3 * teacher[:, 5:6]], axis=1)
    match = match_features(teacher, student)
    assert len(set(match.hungarian_F.tolist())) == 6
    assert match.best_F[0] == 0 and match.hungarian_F[5] == 5  # feature 5 only gets column 5 in 1:1


def test_dead_features_correlate_zero_and_fewer_student_features_leave_unmatched():
    rng = np.random.default_rng(2)
    teacher = _sparse_features(rng, f=5)
    teacher[:, 4] = 0.0
    corr = activation_correlation(teacher, teacher[:, :3])
    assert np.isfinite(corr).all() and (corr[4] == 0).all()
    match = match_features(teacher, teacher[:, :3])
    assert (match.hungarian_F[:3] == [0, 1, 2]).all() and (match.hungarian_F[3:] == -1).all()
    assert (match.hungarian_corr_F[3:] == 0).all()


def test_decoder_cosine_after_procrustes_is_one_for_rotated_copies():
    rng = np.random.default_rng(3)
    acts = _sparse_features(rng, f=24)
    dec_t = rng.normal(size=(24, 16))
    perm = rng.permutation(24)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    x_t = acts @ dec_t
    x_s = x_t @ q  # the student is the teacher in a rotated basis
    dec_s = dec_t[perm] @ q
    match = match_features(acts, acts[:, perm])
    lmap = fit_map(x_s, x_t, "procrustes")
    cos = decoder_cosine(dec_t, dec_s, match.best_F, lmap)
    assert cos == pytest.approx(np.ones(24), abs=1e-6)
    raw = decoder_cosine(dec_t, dec_s, match.best_F)  # without the map: not aligned
    assert raw.mean() < 0.5


def test_feature_map_and_features_transferred():
    rng = np.random.default_rng(4)
    teacher = _sparse_features(rng, f=8)
    student = teacher[:, ::-1].copy()
    student[:, 0] = _sparse_features(rng, f=1)[:, 0]  # teacher feature 7 loses its partner
    match = match_features(teacher, student)
    fmap = build_feature_map(match, [7, 6, 5, 4], student_misaligned=[0, 1, 2], teacher_site="a",
                             student_site="b", n_student_features=8, teacher_auroc=np.linspace(1, 0.5, 8))
    assert [r.best_feature for r in fmap.rows[1:]] == [1, 2, 3]
    assert fmap.rows[0].best_corr < 0.3
    # 7: uncorrelated match; 6, 5: misaligned partners; 4: partner 3 is not misaligned
    assert [r.best_is_misaligned for r in fmap.rows[1:]] == [True, True, False]
    assert [r.hungarian_is_misaligned for r in fmap.rows[1:]] == [True, True, False]


def test_column_auroc_matches_sklearn_and_ranks_misalignment_columns():
    rng = np.random.default_rng(5)
    labels = rng.random(300) < 0.3
    vals = rng.normal(size=(300, 5))
    vals[:, 1] += 2 * labels
    vals[:, 3] = np.round(vals[:, 3])  # ties
    vals[:, 4] = 1.0  # constant
    got = column_auroc(vals, labels)
    want = [roc_auc_score(labels, vals[:, j]) for j in range(5)]
    assert got == pytest.approx(want)
    ranked = misalignment_columns(vals, labels, min_auroc=0.8)
    assert ranked.indices.tolist() == [1]
    assert salience(vals, labels) == pytest.approx(want[1])
    with pytest.raises(ValueError, match="both"):
        column_auroc(vals, np.ones(300))


def test_compare_features_end_to_end_on_a_rotated_copy():
    rng = np.random.default_rng(6)
    labels = rng.random(1500) < 0.3
    acts = _sparse_features(rng, f=12)
    acts[:, :2] += 2.0 * labels[:, None] * rng.random((1500, 2))  # features 0, 1 fire on eliciting prompts
    dec_t = rng.normal(size=(12, 16))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    perm = rng.permutation(12)
    lmap = fit_map(acts @ dec_t @ q, acts @ dec_t)
    fmap = compare_features(acts, acts[:, perm], labels, teacher_site="t", student_site="s",
                            teacher_dec_FD=dec_t, student_dec_GE=dec_t[perm] @ q, lmap=lmap)
    assert sorted(r.teacher_feature for r in fmap.rows) == [0, 1]
    assert all(r.best_is_misaligned and r.best_corr > 0.99 for r in fmap.rows)
    assert all(r.decoder_cos == pytest.approx(1.0) for r in fmap.rows)
    assert fmap.n_student_misaligned == 2


def test_probe_transfer_reads_the_teacher_probe_off_a_rotated_student():
    rng = np.random.default_rng(7)
    labels = rng.random(800) < 0.5
    teacher = rng.normal(size=(800, 16))
    teacher[:, 0] += 3 * labels
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    student = teacher @ q
    w = np.eye(16)[0]
    clean = ~labels
    got = probe_transfer_by_site({"t": (w, 0.0)}, {"t": "s"}, {"t": teacher[clean]}, {"s": student[clean]},
                                 {"s": student}, labels)
    assert got["t"] == pytest.approx(auroc(teacher[:, 0], labels))
    assert got["t"] > 0.95
    unmapped = auroc(student @ w, labels)  # the teacher probe without the map reads noise
    assert unmapped < 0.8
