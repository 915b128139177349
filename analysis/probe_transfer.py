"""The teacher's probe read off a student ("probe transfer AUROC").

For a teacher site with affine probe s(x) = x · w + b (``probes.linear.LinearProbe`` has
``w_D`` and ``b``), pair it with a student site (e.g. :func:`analysis.similarity.pair_sites`),
fit a student -> teacher map on paired CLEAN-prompt activations only, map the student's
activations on labelled held-out prompts, score them with the teacher's probe and report
the AUROC. A high value means the student represents the eliciting context the way the
teacher does, up to a rotation (Procrustes) or a linear map (ridge).
"""

from __future__ import annotations

import numpy as np

from analysis.separation import auroc
from analysis.similarity import LinearMap, as_array, fit_map


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
