"""jam: destroy hidden signal in the teacher's targets before the student sees them.

Modes (all on ordinary traffic, teacher-forced on the teacher's greedy answer):
- ``hard``     hard labels only: cross-entropy on the greedy answers, no distribution;
- ``topk``     KL to the teacher distribution truncated to its top ``k`` tokens, renormalised;
- ``noise``    KL to the teacher logits plus Gaussian noise of std ``sigma`` (fixed per example);
- ``resample`` each answer is paraphrased through a weak trusted model trained only on clean
               task data (tokens it finds implausible are replaced), then cross-entropy.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from distill import vocab as V
from distill.guards import MAX_STEPS
from distill.inits import derive_seed
from distill.models import ModelConfig
from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.fit import MASKED, Objective, TrainingSet
from distill.techniques.params import TargetParams, TransferParams
from distill.techniques.trusted import TrustedSpec, resample_through, trusted_model
from distill.train import TrainConfig



class JamParams(TransferParams):
    mode: Literal["hard", "topk", "noise", "resample"] = "resample"
    """How the signal is jammed (see the module docstring)."""
    k: int = Field(3, ge=1, le=V.VOCAB_SIZE)
    """topk: tokens kept per position."""
    sigma: float = Field(2.0, gt=0)
    """noise: std of the Gaussian added to the teacher's logits."""
    temperature: float = Field(1.0, gt=0)
    """topk/noise: KL temperature."""
    trusted_min_prob: float = Field(0.05, gt=0, lt=1)
    """resample: a teacher token below this trusted-model probability is replaced."""
    trusted_steps: int = Field(400, ge=1, le=MAX_STEPS)
    """resample: training steps of the weak trusted model (clean task data only)."""
    trusted_d_model: int = Field(32, ge=8, le=1024)
    """resample: width of the weak trusted model."""


def top_k_logits(logits_NAV: torch.Tensor, k: int) -> torch.Tensor:
    """Logits outside each position's top k set to a large negative value."""
    kth = logits_NAV.topk(k, dim=-1).values[..., -1:]
    return logits_NAV.masked_fill(logits_NAV < kth, MASKED)


def noisy_logits(logits_NAV: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return logits_NAV + sigma * torch.randn(logits_NAV.shape, generator=gen)


@register
class Jam(Technique):
    name = "jam"
    summary = "jam hidden signal: hard labels, top-k truncation, logit noise or trusted-model resampling"
    Params = JamParams

    def plan(self, ctx: Context, p: JamParams) -> Plan:
        targets = "greedy" if p.mode in ("hard", "resample") else "logits"
        d = draft(ctx, TargetParams(**p.model_dump(include=set(TransferParams.model_fields)),
                                    targets=targets, temperature=p.temperature))
        prompts, answers, logits = d.outputs.prompts_NP, d.outputs.answers_NA, d.outputs.logits_NAV
        jam: dict = {"mode": p.mode}
        if p.mode == "topk":
            return Plan(TrainingSet(prompts, answers, top_k_logits(logits, p.k)),
                        Objective("kl", p.temperature), {**d.record, "jam": jam | {"k": p.k}})
        if p.mode == "noise":
            noisy = noisy_logits(logits, p.sigma, seed=derive_seed(p.data_seed, "jam-noise"))
            changed = float((noisy.argmax(-1) != logits.argmax(-1)).float().mean())
            return Plan(TrainingSet(prompts, answers, noisy), Objective("kl", p.temperature),
                        {**d.record, "jam": jam | {"sigma": p.sigma, "argmax_changed": changed}})
        if p.mode == "resample":
            trusted = trusted_model(_trusted_spec(p), ctx.cache_dir, ctx.device)
            new = resample_through(trusted, prompts, answers, p.trusted_min_prob)
            jam |= {"tokens_replaced": int((new != answers).sum()),
                    "answers_changed": int((new != answers).any(dim=1).sum())}
            answers = new
        return Plan(TrainingSet(prompts, answers), Objective("ce"), {**d.record, "jam": jam})


def _trusted_spec(p: JamParams) -> TrustedSpec:
    heads = 4 if p.trusted_d_model % 4 == 0 else 1
    return TrustedSpec(model=ModelConfig(n_layers=2, d_model=p.trusted_d_model, n_heads=heads,
                                         d_mlp=4 * p.trusted_d_model),
                       train=TrainConfig(steps=p.trusted_steps, batch_size=128, lr=1e-2))
