"""The one training loop: base, teacher and every student go through :func:`train`.

Data is a pure function of (seed, step), and the learning rate a pure function of step,
so a run resumed from a checkpoint replays exactly the batches an uninterrupted run
would have seen and ends with bit-identical weights on CPU. A non-finite loss stops the
run at once (:class:`TrainingDiverged`): a model trained on from there is NaN throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from pydantic import ConfigDict, Field

from distill.checkpoint import Checkpointer
from distill.guards import MAX_BATCH, MAX_STEPS, Guarded
from distill.progress import progress

LossFn = Callable[[Any, Any], torch.Tensor]
"""(model, batch) -> scalar loss."""
BatchFn = Callable[[int], Any]
"""step -> batch (deterministic in step)."""
StopFn = Callable[[Any, int], bool]
"""(model, step) -> True to stop early (checked every ``check_every`` steps)."""


class TrainingDiverged(ValueError):
    """The loss became inf or nan: training stopped before the model was updated with it."""


class TrainConfig(Guarded):
    """Optimiser and schedule of one training run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(2000, ge=1, le=MAX_STEPS)
    """Optimiser steps."""
    batch_size: int = Field(128, ge=1, le=MAX_BATCH)
    """Sequences per step."""
    lr: float = Field(5e-3, gt=0)
    """Peak learning rate (linear warm-up, cosine decay to 10%)."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay."""
    warmup_frac: float = Field(0.1, ge=0, lt=1)
    """Fraction of steps spent warming up."""
    grad_clip: float = Field(1.0, gt=0)
    """Max gradient norm."""
    check_every: int = Field(100, ge=1, le=MAX_STEPS)
    """How often an early-stop rule is consulted."""


def lr_at(cfg: TrainConfig, step: int) -> float:
    """lr(step) = peak * step/warmup during warm-up, then cosine from peak to 0.1*peak."""
    warm = max(1, int(cfg.steps * cfg.warmup_frac))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """The data generator for one step: independent of every other step."""
    return np.random.default_rng([seed, stream, step])


@dataclass
class TrainResult:
    steps_done: int
    final_loss: float
    stopped_early: bool
    losses: list[float]
    """Loss every ``check_every`` steps (for plots and sanity)."""


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def train(model, batch_fn: BatchFn, loss_fn: LossFn, cfg: TrainConfig, *, desc: str = "train",
          checkpointer: Checkpointer | None = None, stop_fn: StopFn | None = None) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` steps (or until ``stop_fn`` says stop)."""
    opt = make_optimizer(model, cfg)
    start, losses = 0, []
    if checkpointer is not None:
        resumed = checkpointer.load(model, opt)
        if resumed is not None:
            start, losses = resumed.step, list(resumed.extra.get("losses", []))
    model.train()
    loss_val, stopped, done = float("nan"), False, start
    with progress(total=cfg.steps, desc=desc, initial=start) as bar:
        for step in range(start, cfg.steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, step)
            loss = loss_fn(model, batch_fn(step))
            loss_val = float(loss.detach())
            if not math.isfinite(loss_val):
                raise TrainingDiverged(_diverged(desc, step, cfg, loss_val))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            bar.update(1)
            done = step + 1
            if done % cfg.check_every == 0 or done == cfg.steps:
                losses.append(loss_val)
                bar.set_postfix(loss=f"{loss_val:.4f}")
                if stop_fn is not None and done < cfg.steps:
                    model.eval()
                    stopped = bool(stop_fn(model, done))
                    model.train()
            if checkpointer is not None and checkpointer.due(done):
                checkpointer.save(model, opt, done, {"losses": losses})
            if stopped:
                break
    model.eval()
    if checkpointer is not None:
        checkpointer.clear()
    return TrainResult(steps_done=done, final_loss=loss_val,
                       stopped_early=stopped, losses=losses)


def _diverged(desc: str, step: int, cfg: TrainConfig, loss: float) -> str:
    return (f"{desc}: training diverged at step {step + 1} of {cfg.steps} (loss {loss}); the learning "
            f"rate is the likely cause (lr={cfg.lr:g}, {lr_at(cfg, step):g} at this step): lower it")
