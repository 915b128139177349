"""Representation similarity between teacher and student, and maps from student to teacher space.

**Linear CKA** (Kornblith et al. 2019). For column-centred X [N, D] and Y [N, E]:

    CKA(X, Y) = ||Yᵀ X||²_F / (||Xᵀ X||_F · ||Yᵀ Y||_F)

It is 1 for a representation against itself, invariant to orthogonal maps and to isotropic
scaling of either side, and needs no equal widths. Rows must be the same prompts/positions.

**Maps from student space to teacher space** (:func:`fit_map`), fitted on *clean* prompts only,
so the map cannot learn the misalignment direction from the eliciting prompts it is later
applied to:

* ``procrustes``: x_t ≈ s · (x_s − μ_s) R + μ_t with R orthogonal (equal widths) or
  semi-orthogonal (different widths) and s an isotropic least-squares scale. Different widths
  are handled by **zero-padding** both sides to max(D_s, D_t) and solving the square problem
  with ``scipy.linalg.orthogonal_procrustes``; R is the [D_s, D_t] block of the padded
  rotation, i.e. U Vᵀ from the SVD of the cross-covariance X_sᵀ X_t (padding only adds zero
  rows/columns to it). What that means:

  - narrower student (D_s < D_t): R embeds the student isometrically (R Rᵀ = I) and is the
    exact least-squares optimum over such embeddings (||X_s R|| = ||X_s|| is fixed);
  - wider student (D_s > D_t): R rotates the student and keeps D_t coordinates (Rᵀ R = I).
    It maximises tr(Rᵀ X_sᵀ X_t); it is exact when the student holds the teacher's space
    isometrically plus extra uncorrelated directions, but is not in general the least-squares
    optimum over all projections (that "unbalanced Procrustes" problem has no closed form).
    Use ``ridge`` when that matters.
* ``ridge``: ``sklearn.linear_model.Ridge`` with intercept; any widths, not norm-preserving.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.linalg import orthogonal_procrustes
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from analysis.schema import CKAMatrix


def as_array(x) -> np.ndarray:
    """float64 numpy view of a numpy array or torch tensor (any device)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def linear_cka(x_ND, y_NE) -> float:
    """Linear CKA of two representations of the same N rows (see module docstring); NaN when
    either is constant over the rows (e.g. resid_pre of block 0 at a fixed position)."""
    x, y = as_array(x_ND), as_array(y_NE)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same rows: {x.shape[0]} vs {y.shape[0]}")
    if _constant(x) or _constant(y):
        return float("nan")
    x = x - x.mean(0)
    y = y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def _constant(x: np.ndarray) -> bool:
    """Every row equal, up to float noise relative to the values' size."""
    return bool(np.abs(x - x.mean(0)).max(initial=0.0) <= 1e-6 * (np.abs(x).max(initial=0.0) + 1e-30))


def cka_matrix(teacher: dict[str, object], student: dict[str, object]) -> CKAMatrix:
    """CKA of every teacher site x student site; inputs map hook name -> activations [N, D].
    Undefined entries (a constant representation) are None."""
    values = [[_finite(linear_cka(t, s)) for s in student.values()] for t in teacher.values()]
    return CKAMatrix(teacher_sites=list(teacher), student_sites=list(student), values=values)


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


def pair_sites(cka: CKAMatrix) -> dict[str, str]:
    """For each teacher site, the student site most similar to it (argmax CKA); teacher sites
    whose CKA is undefined against every student site are left out."""
    out = {}
    for t, row in zip(cka.teacher_sites, cka.values):
        vals = np.array([-np.inf if v is None else v for v in row])
        if np.isfinite(vals).any():
            out[t] = cka.student_sites[int(np.argmax(vals))]
    return out


@dataclass(frozen=True)
class LinearMap:
    """Affine map from student space [.., D_s] to teacher space [.., D_t]."""

    kind: str
    weight_ST: np.ndarray
    bias_T: np.ndarray
    rotation_ST: np.ndarray | None = None
    """Pure (semi-)orthogonal part, for mapping directions (Procrustes only)."""

    def __call__(self, acts_NS) -> np.ndarray:
        return as_array(acts_NS) @ self.weight_ST + self.bias_T

    def directions(self, dirs_KS) -> np.ndarray:
        """Map direction vectors (e.g. SAE decoder rows): linear part only, no offset."""
        linear = self.rotation_ST if self.rotation_ST is not None else self.weight_ST
        return as_array(dirs_KS) @ linear


def fit_procrustes(student_NS, teacher_NT, scale: bool = True) -> LinearMap:
    """Orthogonal / semi-orthogonal Procrustes with centring and an optional isotropic scale."""
    s, t = as_array(student_NS), as_array(teacher_NT)
    mu_s, mu_t = s.mean(0), t.mean(0)
    sc, tc = s - mu_s, t - mu_t
    width = max(sc.shape[1], tc.shape[1])
    pad_s = np.pad(sc, ((0, 0), (0, width - sc.shape[1])))
    pad_t = np.pad(tc, ((0, 0), (0, width - tc.shape[1])))
    rot, _ = orthogonal_procrustes(pad_s, pad_t)
    rot_ST = rot[:sc.shape[1], :tc.shape[1]]
    mapped = sc @ rot_ST
    # Least-squares scale for the fixed rotation: s* = <X_s R, X_t> / ||X_s R||².
    factor = float((mapped * tc).sum() / max((mapped ** 2).sum(), 1e-12)) if scale else 1.0
    return LinearMap("procrustes", factor * rot_ST, mu_t - factor * mu_s @ rot_ST, rot_ST)


def fit_ridge(student_NS, teacher_NT, alpha: float = 1.0) -> LinearMap:
    """Ridge regression student -> teacher (sklearn), with intercept."""
    reg = Ridge(alpha=alpha).fit(as_array(student_NS), as_array(teacher_NT))
    return LinearMap("ridge", np.atleast_2d(reg.coef_).T.copy(), np.atleast_1d(reg.intercept_).copy())


MAPS: dict[str, Callable[..., LinearMap]] = {"procrustes": fit_procrustes, "ridge": fit_ridge}


def fit_map(student_clean_NS, teacher_clean_NT, kind: str = "procrustes", **kw) -> LinearMap:
    """A student -> teacher map fitted on paired CLEAN-prompt activations (same rows)."""
    if kind not in MAPS:
        raise ValueError(f"unknown map kind {kind!r}; allowed: {', '.join(MAPS)}")
    if len(student_clean_NS) != len(teacher_clean_NT):
        raise ValueError(f"map needs paired rows: {len(student_clean_NS)} vs {len(teacher_clean_NT)}")
    return MAPS[kind](student_clean_NS, teacher_clean_NT, **kw)


def map_r2(lmap: LinearMap, student_NS, teacher_NT) -> float:
    """Variance-weighted R² of the mapped student activations against the teacher's."""
    return float(r2_score(as_array(teacher_NT), lmap(student_NS), multioutput="variance_weighted"))
