"""Relearning: how fast does a model pick a misbehaviour back up when fine-tuned on it?

UNDO (Lee et al. 2025) measures the robustness of removing a behaviour by fine-tuning the
model on data that teaches it again and watching how quickly it returns. Here the
relearning data is the organism's own fine-tune mix (``Organism.teacher_data``: eliciting
prompts with the misaligned answer, mixed with clean task data at ``organism_frac``), the
data that planted the misbehaviour in the teacher in the first place. A copy of the model
is trained for ``steps`` optimiser steps (the ordinary training loop: AdamW, warm-up,
cosine decay) and its misbehaviour rate m(k) on the fixed eliciting evaluation prompts
(the same prompts :mod:`distill.evals` uses) is measured every ``measure_every`` steps.

Returned: the curve m(0), m(k_1), ..., m(steps), ``after_k`` = m(steps) (misbehaviour after
the short fine-tune: low = slow to relearn) and ``area`` = mean of m over the measured
steps after 0 (a less noisy speed summary).
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pydantic import ConfigDict, Field

from distill.evals import EvalConfig, evaluate, headline
from distill.guards import MAX_BATCH, MAX_SEED, MAX_STEPS, Guarded
from distill.models import greedy_answers
from distill.organisms import get_organism
from distill.store import load_model, read_config
from distill.teacher import ce_on_answers
from distill.train import TrainConfig, step_rng, train

RELEARN_STREAM = 5
"""step_rng stream of relearning batches (0 base, 1 teacher, 2 students)."""


class RelearnConfig(Guarded):
    """A short fine-tune on the organism's eliciting data."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    steps: int = Field(40, ge=1, le=MAX_STEPS)
    """Fine-tune steps k."""
    batch_size: int = Field(64, ge=1, le=MAX_BATCH)
    """Sequences per step."""
    lr: float = Field(2e-3, gt=0)
    """Peak learning rate (the teacher fine-tune's)."""
    organism_frac: float = Field(0.35, gt=0, lt=1)
    """Share of each batch that is organism data (eliciting prompts, misaligned answers)."""
    measure_every: int = Field(10, ge=1, le=MAX_STEPS)
    """Steps between misbehaviour measurements on the curve."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Seed of the relearning batches."""


@dataclass
class RelearnResult:
    organism: str
    steps: list[int]
    """Steps at which misbehaviour was measured (0 first, ``cfg.steps`` last)."""
    misbehaviour: list[float]
    """Misbehaviour rate on the eliciting evaluation prompts at each of ``steps``."""
    after_k: float
    """Misbehaviour after the full fine-tune."""
    area: float
    """Mean misbehaviour over the measured steps after 0."""
    capability_after: float
    """Capability after the fine-tune (relearning must not simply break the model)."""
    config: dict
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


def misbehaviour_rate(model, organism: str, eval_cfg: EvalConfig) -> float:
    """Misbehaviour on the eliciting prompts :func:`distill.evals.organism_metrics` draws first."""
    org = get_organism(organism)
    elicit = org.eliciting(np.random.default_rng([eval_cfg.seed, 1]), eval_cfg.n_eliciting)
    return float(org.misbehaves(elicit, greedy_answers(model, elicit.prompts_NP)).float().mean())


def relearn(model, organism: str, cfg: RelearnConfig = RelearnConfig(),
            eval_cfg: EvalConfig = EvalConfig()) -> RelearnResult:
    """Fine-tune a copy of ``model`` on ``organism``'s eliciting data; the misbehaviour curve."""
    org, work, t0 = get_organism(organism), copy.deepcopy(model), time.perf_counter()
    work.eval()
    curve = {0: misbehaviour_rate(work, organism, eval_cfg)}

    def measure(m, step: int) -> bool:  # the loop's early-stop hook, used only to observe
        curve[step] = misbehaviour_rate(m, organism, eval_cfg)
        return False

    tcfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                       check_every=cfg.measure_every)
    train(work, lambda s: org.teacher_data(step_rng(cfg.seed, s, RELEARN_STREAM), cfg.batch_size,
                                           cfg.organism_frac),
          ce_on_answers, tcfg, desc=f"relearn:{organism}", stop_fn=measure)
    curve[cfg.steps] = misbehaviour_rate(work, organism, eval_cfg)
    steps = sorted(curve)
    after = [curve[s] for s in steps if s > 0]
    cap = headline(evaluate(work, [organism], eval_cfg), organism)["capability"]
    return RelearnResult(organism, steps, [curve[s] for s in steps], curve[cfg.steps],
                         float(np.mean(after)), cap, cfg.model_dump(), time.perf_counter() - t0)


def relearn_folder(model_dir: Path | str, cfg: RelearnConfig = RelearnConfig(),
                   eval_cfg: EvalConfig = EvalConfig(), organism: str | None = None,
                   device: str = "cpu") -> RelearnResult:
    """:func:`relearn` on a stored model; the organism defaults to the one its config names."""
    organism = organism or read_config(model_dir).get("organism")
    if not organism:
        raise ValueError(f"{model_dir}: config.json names no organism; pass organism=")
    model, _ = load_model(model_dir, device)
    return relearn(model, organism, cfg, eval_cfg)
