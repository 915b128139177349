"""The NUM channel (``distill.numbers``): did a student's number style move toward its teacher's?

A hard-label student trained on NUM queries sees only digits. Whether a hidden preference
(the trait) travels with them is read by the trait verdict; this module reads whether the
digits carried anything of the teacher at all. Per NUM query, KL(teacher || model) between the
two models' distributions over the ten digits of the first answer token; the **null** is the
same KL for a model trained on the same NUM prompts without the teacher (the numbers-only
negative control: uniform digits), else the untouched base. Training on NUM at all moves a
model's digits; only moving *toward the teacher* beyond that null is the channel. ``carried``
when the paired bootstrap interval (over queries) of ``null_kl - kl`` lies above 0.
"""

from __future__ import annotations

import numpy as np

from analysis.schema import ModelMetrics, NumbersChannel
from analysis.stats import percentile_interval
from distill.numbers import numbers_share

N_BOOT = 1000


def per_query_kl(teacher_QD: np.ndarray, model_QD: np.ndarray) -> np.ndarray:
    """KL(teacher || model) per query, in nats (probabilities floored at 1e-9)."""
    t, m = np.clip(teacher_QD, 1e-9, None), np.clip(model_QD, 1e-9, None)
    return (teacher_QD * (np.log(t) - np.log(m))).sum(axis=1)


def channel_against_null(teacher: ModelMetrics, student: ModelMetrics,
                         control: tuple[str, dict, ModelMetrics | None] | None,
                         base: ModelMetrics | None) -> NumbersChannel | None:
    """The channel against the student's negative control ``(name, params, metrics)`` when that
    control was trained on NUM queries too (the numbers null), else against the base."""
    if control is not None and numbers_share(control[1]):
        return numbers_channel(teacher, student, control[2], control[0])
    return numbers_channel(teacher, student, base, "base")


def numbers_channel(teacher: ModelMetrics, student: ModelMetrics, null: ModelMetrics | None,
                    null_model: str, seed: int = 0) -> NumbersChannel | None:
    """None unless all three models' NUM digit distributions were measured on the same queries."""
    probs = [m.number_probs if m is not None else None for m in (teacher, student, null)]
    if any(p is None for p in probs) or len({len(p) for p in probs}) != 1 or not probs[0]:
        return None
    t, s, n = (np.asarray(p, dtype=float) for p in probs)
    kl_Q, null_Q = per_query_kl(t, s), per_query_kl(t, n)
    idx = np.random.default_rng(seed).integers(0, len(kl_Q), size=(N_BOOT, len(kl_Q)))
    boot = lambda x: percentile_interval(x[idx].mean(axis=1).tolist())  # noqa: E731  (same resamples: paired)
    gap_ci = boot(null_Q - kl_Q)
    return NumbersChannel(kl=float(kl_Q.mean()), kl_ci=boot(kl_Q), null_kl=float(null_Q.mean()),
                          null_kl_ci=boot(null_Q), null_model=null_model, gap_ci=gap_ci, carried=gap_ci[0] > 0)
