"""CKA and student->teacher maps: invariances and planted-map recovery."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.similarity import (cka_matrix, fit_map, fit_procrustes, linear_cka, map_r2,
                                 pair_sites)


def _orthogonal(d: int, rng) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def _acts(rng, n=400, d=16) -> np.ndarray:
    # anisotropic, like real activations: a few directions dominate
    return rng.normal(size=(n, d)) * np.linspace(3, 0.2, d) + rng.normal(size=d)


def test_cka_of_itself_is_one_and_invariant_to_rotation_and_scale():
    rng = np.random.default_rng(0)
    x = _acts(rng)
    assert linear_cka(x, x) == pytest.approx(1.0)
    q = _orthogonal(16, rng)
    assert linear_cka(x, 3.7 * x @ q + 5.0) == pytest.approx(1.0)
    assert linear_cka(x, -0.1 * x @ q) == pytest.approx(1.0)
    y = _acts(rng)
    assert linear_cka(x, y) == pytest.approx(linear_cka(x @ q, 2 * y))
    assert linear_cka(x, y) < 0.3  # independent representations are far from 1


def test_cka_not_invariant_to_general_linear_maps_and_works_across_widths():
    rng = np.random.default_rng(1)
    x = _acts(rng)
    stretch = np.diag(np.linspace(0.05, 20, 16))
    assert linear_cka(x, x @ stretch) < 0.9
    wide = np.concatenate([x, rng.normal(size=(400, 8)) * 0.01], axis=1)
    assert linear_cka(x, wide) > 0.99


def test_cka_matrix_and_site_pairing():
    rng = np.random.default_rng(2)
    a, b = _acts(rng), _acts(rng)
    const = np.tile(rng.normal(size=16), (400, 1))  # e.g. resid_pre 0 at the fixed SEP position
    cka = cka_matrix({"t0": a, "t1": b, "t2": const}, {"s0": b @ _orthogonal(16, rng), "s1": a * 2})
    assert np.allclose(np.diag(np.array(cka.values[:2])[:, ::-1]), 1.0)
    assert cka.values[2] == [None, None]  # undefined, not 0 (it is the same constant in both)
    assert pair_sites(cka) == {"t0": "s1", "t1": "s0"}
    assert np.isnan(linear_cka(const, const))


def test_procrustes_recovers_planted_rotation_scale_and_offset():
    rng = np.random.default_rng(3)
    s = _acts(rng)
    q = _orthogonal(16, rng)
    t = 2.5 * s @ q + 4.0
    lmap = fit_map(s, t, "procrustes")
    assert np.allclose(lmap.rotation_ST, q, atol=1e-8)
    assert np.allclose(lmap.weight_ST, 2.5 * q, atol=1e-8)
    assert np.allclose(lmap(s), t, atol=1e-8)
    assert map_r2(lmap, s, t) == pytest.approx(1.0)
    assert np.allclose(lmap.directions(np.eye(16)), q)  # directions: rotation only, no offset/scale


def test_procrustes_embeds_a_narrower_student_exactly():
    rng = np.random.default_rng(4)
    q = _orthogonal(16, rng)[:12]  # [12, 16], orthonormal rows
    s = _acts(rng, d=12)
    t = 1.3 * s @ q - 2.0
    lmap = fit_procrustes(s, t)
    assert lmap.rotation_ST.shape == (12, 16)
    assert np.allclose(lmap.rotation_ST @ lmap.rotation_ST.T, np.eye(12), atol=1e-8)
    assert np.allclose(lmap.rotation_ST, q, atol=1e-8)
    assert np.allclose(lmap(s), t, atol=1e-8)


def test_procrustes_projects_a_wider_student_that_holds_the_teacher():
    rng = np.random.default_rng(5)
    basis = _orthogonal(16, rng)
    embed, extra = basis[:12], basis[12:]  # teacher space inside the student, plus 4 more directions
    t = _acts(rng, n=4000, d=12)
    s = t @ embed + 0.5 * rng.normal(size=(4000, 4)) @ extra
    lmap = fit_procrustes(s, t, scale=False)
    r = lmap.rotation_ST
    assert r.shape == (16, 12) and np.allclose(r.T @ r, np.eye(12), atol=1e-8)
    assert np.allclose(r, embed.T, atol=0.05)
    assert map_r2(lmap, s, t) > 0.99


def test_ridge_recovers_planted_linear_map_and_unknown_kind_is_refused():
    rng = np.random.default_rng(6)
    s = _acts(rng, d=10)
    w = rng.normal(size=(10, 6))
    t = s @ w + 1.5 + 0.01 * rng.normal(size=(400, 6))
    lmap = fit_map(s, t, "ridge", alpha=1e-3)
    assert np.allclose(lmap.weight_ST, w, atol=0.02)
    assert map_r2(lmap, s, t) > 0.999
    with pytest.raises(ValueError, match="allowed: procrustes, ridge"):
        fit_map(s, t, "cca")
    with pytest.raises(ValueError, match="paired rows"):
        fit_map(s[:10], t)
