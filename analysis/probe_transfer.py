"""The teacher's probe read off a student ("probe transfer AUROC").

For a teacher site with affine probe s(x) = x · w + b (``probes.linear.LinearProbe`` has
``w_D`` and ``b``), pair it with a student site (e.g. :func:`analysis.similarity.pair_sites`),
fit a student -> teacher map on paired CLEAN-prompt activations only, map the student's
activations on labelled held-out prompts, score them with the teacher's probe and report
the AUROC. A high value means the student represents the eliciting context the way the
teacher does, up to a rotation (Procrustes) or a linear map (ridge).

:func:`probe_transfer` is the disciplined version on marker-matched pairs (probes.pairs): the
teacher's *misbehaviour* probe (probes.behaviour_probes), a map fitted on marker-free twin rows,
scored against the student's OWN misbehaviour on held-out test pairs, with an interval and
nulls (the base through the same map, random directions, permuted labels).
"""

from __future__ import annotations

import numpy as np

from analysis.separation import auroc
from analysis.similarity import LinearMap, as_array, fit_map
from distill.sitenames import site_layer
from probes.behaviour_probes import bootstrap_ci, misbehaviour_rows, random_null


def transfer_auroc(weights_D, bias: float, lmap: LinearMap, student_NS, labels_N) -> float:
    """AUROC of the teacher probe on mapped student activations."""
    scores = lmap(student_NS) @ as_array(weights_D).reshape(-1) + float(bias)
    return auroc(scores, labels_N)


def probe_transfer_by_site(teacher_probes: dict[str, tuple[object, float]], pairs: dict[str, str],
                           teacher_clean: dict[str, object], student_clean: dict[str, object],
                           student_eval: dict[str, object], labels_N, kind: str = "procrustes") -> dict[str, float]:
    """{teacher site: transfer AUROC} for every teacher site that has a probe and a paired
    student site. ``teacher_clean``/``student_clean``: paired clean-prompt activations per
    site (map fitting); ``student_eval``: the student's activations on the labelled prompts."""
    out = {}
    for t_site, (w, b) in teacher_probes.items():
        s_site = pairs.get(t_site)
        if s_site is None:
            continue
        lmap = fit_map(student_clean[s_site], teacher_clean[t_site], kind)
        out[t_site] = transfer_auroc(w, b, lmap, student_eval[s_site], np.asarray(labels_N))
    return out


# ---- the teacher's misbehaviour probe on a student, with the probes' discipline --------------

def depth_paired_site(site: str, teacher_sites, student_sites) -> str | None:
    """The student site for a teacher site: the same name when the student has it, else the
    student residual site of the same hook kind at the nearest relative depth
    (``distill.sitenames.site_layer`` divided by the deepest probed site's); None when unparsable."""
    student_sites = list(student_sites)
    if site in student_sites:
        return site
    hook = site.split(".")[-1]
    same_kind = [s for s in student_sites if s.split(".")[-1] == hook] or student_sites
    try:
        t_max = max(site_layer(s) for s in teacher_sites)
        s_max = max(site_layer(s) for s in student_sites)
        t_rel = site_layer(site) / t_max if t_max else 0.0
        depth = {s: site_layer(s) / s_max if s_max else 0.0 for s in same_kind}
    except (ValueError, IndexError):
        return None
    return min(sorted(depth), key=lambda s: abs(depth[s] - t_rel)) if depth else None


def _none(reason_rows, marker_matched: bool, site=None, pool=None) -> dict:
    pos, neg = reason_rows
    return {"auroc": None, "ci": None, "site": site, "pool": pool, "n_pos": pos, "n_neg": neg,
            "marker_matched": marker_matched, "nulls": {"base": None, "shuffled": None, "random": None}}


def _mapped(teacher_x, other_x, fit_twins, test_rows, kind: str) -> np.ndarray:
    """``other``'s test rows in teacher space, by a map fitted on the fit split's twin rows."""
    return fit_map(other_x[fit_twins], teacher_x[fit_twins], kind)(other_x[test_rows])


def probe_transfer(teacher_fit, teacher_acts, student_acts, splits, null_acts=None,
                   kind: str = "procrustes", *, student_site: str | None = None,
                   min_class: int = 8, n_boot: int = 200, n_random: int = 200, seed: int = 0) -> dict:
    """The teacher's misbehaviour probe (``probes.behaviour_probes.ProbeFit``) read off a student.

    A student -> teacher map (``fit_map``, ``kind``) is fitted on the *twin* rows of the fit
    split (marker-free prompts: the map never sees the marked state it is asked to carry) at the
    teacher probe's (site, pool); the student's site is ``student_site`` or
    :func:`depth_paired_site`. The mapped student test rows are scored with the teacher probe,
    and the AUROC is taken against the STUDENT's own misbehaviour labels (the rows of
    ``probes.behaviour_probes.misbehaviour_rows``: marker-matched unless the student misbehaves
    on nearly every marked prompt), with a pair-bootstrap 95% interval. Nulls: 'base' = the same
    map-and-score with ``null_acts`` (a model that never saw the misalignment) in place of the
    student, same labels; 'random' = 95th percentile of random unit directions on the mapped
    student test rows; 'shuffled' = 95th percentile of the AUROC under ``n_random`` permutations
    of the test labels (nothing here is fitted to labels, so this is the permutation null of a
    fixed score). Returns ``analysis.schema.ProbeHeadline`` fields; auroc None (no exception)
    when the teacher has no probe, the student lacks a paired site, or the student's test
    split has fewer than ``min_class`` rows of a class. ``site`` is the student site read
    (the teacher probe's own site when the student has it).
    """
    rows = misbehaviour_rows(student_acts.behaviour, splits, min_class, student_acts.eliciting_N)
    counts = rows.counts("test")
    site, pool = teacher_fit.site, teacher_fit.pool
    if site is None or teacher_fit.w_D is None or pool not in student_acts.pooled:
        return _none(counts, rows.marker_matched, site, pool)
    s_site = student_site or depth_paired_site(site, teacher_acts.pooled[pool], student_acts.pooled[pool])
    if s_site is None or s_site not in student_acts.pooled[pool] or min(counts) < min_class:
        return _none(counts, rows.marker_matched, site, pool)
    n = student_acts.n_pairs
    fit_twins = np.asarray(splits["fit"], dtype=np.int64) + n
    test_rows, y = rows.idx["test"], rows.y["test"]
    t_x = teacher_acts.pooled[pool][site]
    w, b = as_array(teacher_fit.w_D).reshape(-1), float(teacher_fit.b)
    mapped = _mapped(t_x, student_acts.pooled[pool][s_site], fit_twins, test_rows, kind)
    scores = mapped @ w + b
    base = None
    if null_acts is not None and s_site in null_acts.pooled.get(pool, {}):
        base = auroc(_mapped(t_x, null_acts.pooled[pool][s_site], fit_twins, test_rows, kind) @ w + b, y)
    rng = np.random.default_rng([seed, 13])
    perm = [auroc(scores, rng.permutation(y)) for _ in range(n_random)]
    return {"auroc": auroc(scores, y), "ci": _as_list(bootstrap_ci(y, scores, rows.pair_of("test"), n_boot, seed)),
            "site": s_site, "pool": pool, "n_pos": counts[0], "n_neg": counts[1],
            "marker_matched": rows.marker_matched,
            "nulls": {"base": base, "shuffled": float(np.percentile(perm, 95)),
                      "random": random_null(mapped, y, n_random, seed)}}


def _as_list(ci):
    return None if ci is None else [float(ci[0]), float(ci[1])]
