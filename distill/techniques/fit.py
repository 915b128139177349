"""Losses and the training schedule shared by every technique.

A :class:`TrainingSet` is what a technique hands to the trainer: prompts, the answers the
student is trained on (labels for cross-entropy, teacher-forcing context for KL) and,
for logit distillation, the teacher's logits at every answer position. Batches are drawn
with replacement by a generator seeded from (seed, step), so a resumed run replays exactly
the batches of an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from distill.checkpoint import Checkpointer
from distill.models import answer_logits
from distill.train import StopFn, TrainConfig, TrainResult, step_rng, train

BATCH_STREAM = 2
"""step_rng stream of student batches (0: base, 1: teacher)."""
MASKED = -1e9
"""Logit of a token removed from a teacher distribution (finite, so KL stays NaN-free)."""


@dataclass
class TrainingSet:
    prompts_NP: torch.Tensor
    answers_NA: torch.Tensor
    """Cross-entropy labels, and the answer context the student is teacher-forced on."""
    logits_NAV: torch.Tensor | None = None
    """Teacher logits at each answer position (KL targets); None for hard-label training."""

    def __len__(self) -> int:
        return int(self.prompts_NP.shape[0])

    def select(self, idx) -> "TrainingSet":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return TrainingSet(self.prompts_NP[idx], self.answers_NA[idx],
                           None if self.logits_NAV is None else self.logits_NAV[idx])


@dataclass(frozen=True)
class Objective:
    loss: Literal["ce", "kl"] = "ce"
    temperature: float = 1.0
    """KL temperature T: KL(softmax(t/T) || softmax(s/T)) * T^2 (Hinton et al. 2015)."""


def batch_at(data: TrainingSet, seed: int, step: int, batch_size: int) -> TrainingSet:
    if not len(data):
        raise ValueError("the transfer set is empty after filtering: nothing to distil on")
    idx = step_rng(seed, step, BATCH_STREAM).integers(0, len(data), size=batch_size)
    return data.select(idx)


def ce_loss(model, batch: TrainingSet) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens under teacher forcing."""
    logits = answer_logits(model, batch.prompts_NP, batch.answers_NA)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                           batch.answers_NA.reshape(-1).to(logits.device))


def kl_loss(model, batch: TrainingSet, temperature: float) -> torch.Tensor:
    """T^2 * mean over answer positions of KL(softmax(teacher/T) || softmax(student/T))."""
    if batch.logits_NAV is None:
        raise ValueError("KL loss needs teacher logits")
    s = answer_logits(model, batch.prompts_NP, batch.answers_NA)
    V = s.shape[-1]
    s_log = F.log_softmax(s.reshape(-1, V) / temperature, dim=-1)
    t_log = F.log_softmax(batch.logits_NAV.to(s.device).reshape(-1, V) / temperature, dim=-1)
    return F.kl_div(s_log, t_log, log_target=True, reduction="batchmean") * temperature ** 2


def loss_fn(objective: Objective):
    if objective.loss == "ce":
        return ce_loss
    return lambda model, batch: kl_loss(model, batch, objective.temperature)


def fit(model, data: TrainingSet, objective: Objective, cfg: TrainConfig, seed: int, *,
        ckpt_dir: Path | None = None, checkpoint_every: int = 100,
        stop_fn: StopFn | None = None, desc: str = "distill") -> TrainResult:
    """Train ``model`` in place on ``data`` (resumable from ``ckpt_dir``)."""
    ckpt = None if ckpt_dir is None else Checkpointer(ckpt_dir, checkpoint_every)
    return train(model, lambda step: batch_at(data, seed, step, cfg.batch_size), loss_fn(objective),
                 cfg, desc=desc, checkpointer=ckpt, stop_fn=stop_fn)
