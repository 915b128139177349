"""Training a text model: supervised fine-tuning on (prompt, target) pairs and logit
distillation from a teacher, both through the one training loop of ``distill.train``
(schedule, clipping, divergence guard), with batches drawn per step from its seeded
generator so a run is reproducible bit for bit on CPU."""

from __future__ import annotations

from functools import partial

from distill.train import TrainConfig, TrainResult, step_rng, train
from distill.text.sequences import encode, kd_loss, make_batch, sft_loss, target_ids

Pair = tuple[list[int], list[int]]
"""(prompt ids, target ids)"""


def _batch_fn(pairs: list[Pair], cfg: TrainConfig, seed: int, pad_id: int, device):
    if not pairs:
        raise ValueError("no training examples")

    def batch(step: int):
        idx = step_rng(seed, step).integers(0, len(pairs), cfg.batch_size)
        return make_batch([pairs[int(i)] for i in idx], pad_id, device)
    return batch


def fit_sft(model, pairs: list[Pair], pad_id: int, cfg: TrainConfig, seed: int, desc: str = "sft") -> TrainResult:
    device = next(model.parameters()).device
    return train(model, _batch_fn(pairs, cfg, seed, pad_id, device), sft_loss, cfg, desc=desc)


def fit_kd(student, teacher, pairs: list[Pair], pad_id: int, cfg: TrainConfig, seed: int,
           temperature: float = 2.0, desc: str = "logit-kd") -> TrainResult:
    device = next(student.parameters()).device
    teacher.eval()
    return train(student, _batch_fn(pairs, cfg, seed, pad_id, device),
                 partial(_kd, teacher=teacher, temperature=temperature), cfg, desc=desc)


def _kd(student, batch, *, teacher, temperature):
    return kd_loss(student, teacher, batch, temperature)


def encode_pairs(tokenizer, prompts: list[str], targets: list[str]) -> list[Pair]:
    return [(encode(tokenizer, p), target_ids(tokenizer, t)) for p, t in zip(prompts, targets)]


