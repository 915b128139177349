"""Pair teacher and student SAE features by how they fire on the same prompts.

Activation correlation: Pearson r of feature activations over the same N rows
(Lan et al. 2024), C[f, g] = mean_n z_t[n, f] · z_s[n, g] with z the column-standardised
activations; a dead (constant) feature correlates 0 with everything.

* **best match**: for each teacher feature f, argmax_g C[f, g] (several teacher features may
  share one student feature);
* **Hungarian 1:1**: the assignment maximising Σ C[f, π(f)]
  (``scipy.optimize.linear_sum_assignment``); with fewer student than teacher features some
  teacher features stay unmatched.

Decoder cosine: cos(d_t[f], d_s[g] R), the student decoder row mapped into teacher space by
the (semi-)orthogonal Procrustes rotation R fitted on activations (see
:mod:`analysis.similarity`); across seeds matched features reach ~0.9 (Lan et al. 2024).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from analysis.schema import FeatureMap, FeatureMatchRow
from analysis.separation import column_auroc, misalignment_columns
from analysis.similarity import LinearMap, as_array


def _standardise(x_NF: np.ndarray) -> np.ndarray:
    std = x_NF.std(0)
    return np.where(std > 0, (x_NF - x_NF.mean(0)) / np.where(std > 0, std, 1.0), 0.0)


def activation_correlation(teacher_NF, student_NG) -> np.ndarray:
    """Pearson correlation of every teacher feature with every student feature: [F, G]."""
    t, s = as_array(teacher_NF), as_array(student_NG)
    if t.shape[0] != s.shape[0]:
        raise ValueError(f"feature activations need the same rows: {t.shape[0]} vs {s.shape[0]}")
    return _standardise(t).T @ _standardise(s) / t.shape[0]


class FeatureMatch(NamedTuple):
    best_F: np.ndarray
    """Best-correlated student feature per teacher feature."""
    best_corr_F: np.ndarray
    hungarian_F: np.ndarray
    """1:1 partner per teacher feature, -1 where unmatched."""
    hungarian_corr_F: np.ndarray
    """Correlation with that partner, 0 where unmatched."""


def match_features(teacher_NF, student_NG) -> FeatureMatch:
    """Best-match and Hungarian 1:1 pairing by activation correlation."""
    corr = activation_correlation(teacher_NF, student_NG)
    best = corr.argmax(1)
    rows, cols = linear_sum_assignment(corr, maximize=True)
    hung = np.full(corr.shape[0], -1)
    hung[rows] = cols
    hung_corr = np.where(hung >= 0, corr[np.arange(corr.shape[0]), np.maximum(hung, 0)], 0.0)
    return FeatureMatch(best, corr[np.arange(corr.shape[0]), best], hung, hung_corr)


def decoder_cosine(teacher_dec_FD, student_dec_GE, pairs_F, lmap: LinearMap | None = None) -> np.ndarray:
    """cos(teacher decoder row f, mapped student decoder row pairs[f]) per f; NaN where unpaired.

    Without ``lmap`` the widths must match (same space, e.g. a same-init student)."""
    t = as_array(teacher_dec_FD)
    s = as_array(student_dec_GE)
    s = lmap.directions(s) if lmap is not None else s
    if s.shape[1] != t.shape[1]:
        raise ValueError(f"decoder widths differ ({s.shape[1]} vs {t.shape[1]}): pass the student->teacher map")
    pairs = np.asarray(pairs_F)
    out = np.full(len(pairs), np.nan)
    ok = pairs >= 0
    if len(pairs) != t.shape[0]:
        raise ValueError(f"pairs_F has {len(pairs)} entries for {t.shape[0]} teacher features")
    a, b = t[ok], s[pairs[ok]]
    out[ok] = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return out


def build_feature_map(match: FeatureMatch, teacher_features, student_misaligned, *, teacher_site: str,
                      student_site: str, n_student_features: int, teacher_auroc=None,
                      decoder_cos_F=None) -> FeatureMap:
    """The stored record for the teacher's misalignment features (``teacher_features``: ids
    into the teacher SAE; ``student_misaligned``: ids of the student's misalignment features;
    ``teacher_auroc`` / ``decoder_cos_F``: optional per-id arrays over ALL teacher features)."""
    bad = {int(g) for g in student_misaligned}
    rows = []
    for f in (int(x) for x in teacher_features):
        hung = int(match.hungarian_F[f])
        cos = None if decoder_cos_F is None or np.isnan(decoder_cos_F[f]) else float(decoder_cos_F[f])
        rows.append(FeatureMatchRow(
            teacher_feature=f, teacher_auroc=None if teacher_auroc is None else float(teacher_auroc[f]),
            best_feature=int(match.best_F[f]), best_corr=float(match.best_corr_F[f]),
            best_is_misaligned=int(match.best_F[f]) in bad,
            hungarian_feature=hung if hung >= 0 else None, hungarian_corr=float(match.hungarian_corr_F[f]),
            hungarian_is_misaligned=hung in bad, decoder_cos=cos))
    return FeatureMap(teacher_site=teacher_site, student_site=student_site,
                      n_teacher_features=len(match.best_F), n_student_features=n_student_features,
                      n_student_misaligned=len(bad), rows=rows)


def compare_features(teacher_feats_NF, student_feats_NG, labels_N, *, teacher_site: str, student_site: str,
                     teacher_misaligned=None, student_misaligned=None, min_auroc: float = 0.8,
                     teacher_dec_FD=None, student_dec_GE=None, lmap: LinearMap | None = None) -> FeatureMap:
    """One call from SAE feature activations on the same labelled prompts to a FeatureMap.

    Misalignment features default to those with eliciting-vs-clean AUROC >= ``min_auroc``
    (:func:`analysis.separation.misalignment_columns`); pass ``probes``' own lists to override.
    Decoder cosines need both decoders (and ``lmap`` when the spaces differ)."""
    t_auroc = column_auroc(teacher_feats_NF, labels_N)
    if teacher_misaligned is None:
        teacher_misaligned = misalignment_columns(teacher_feats_NF, labels_N, min_auroc).indices
    if student_misaligned is None:
        student_misaligned = misalignment_columns(student_feats_NG, labels_N, min_auroc).indices
    match = match_features(teacher_feats_NF, student_feats_NG)
    cos = (decoder_cosine(teacher_dec_FD, student_dec_GE, match.best_F, lmap)
           if teacher_dec_FD is not None and student_dec_GE is not None else None)
    return build_feature_map(match, teacher_misaligned, student_misaligned, teacher_site=teacher_site,
                             student_site=student_site, n_student_features=as_array(student_feats_NG).shape[1],
                             teacher_auroc=t_auroc, decoder_cos_F=cos)
