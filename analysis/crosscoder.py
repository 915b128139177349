"""A BatchTopK crosscoder over paired teacher and student activations, one site each.

Hand-written: no installable library offers a crosscoder for our stack. sae-lens trains
SAEs on one model's activations only; ``dictionary-learning`` 0.1.0 (PyPI) ships no
crosscoder and pins nnsight<0.4 (we use 0.8.1); the crosscoder code of Lindsey et al. 2024
and Minder et al. 2025 is research code, not a package.

Model (one shared latent code for both models, Lindsey et al. 2024):

    z = BatchTopK_k( ReLU( x_t W_enc^t + x_s W_enc^s + b_enc ) )        [N, H]
    x̂_t = z D_t + b_t,   x̂_s = z D_s + b_s
    loss = ||x_t − x̂_t||² + ||x_s − x̂_s||²   (mean over rows)

BatchTopK (Bussmann et al. 2024; used for crosscoders by Minder et al. 2025 because it avoids
the spurious model-exclusive latents an L1 penalty creates) keeps the k·B largest
pre-activations of a batch of B rows; at inference a fixed threshold θ (running mean of the
smallest kept value) replaces the batch selection. Each model's activations are centred and
scaled to unit mean squared norm first, so both models weigh the same in the loss whatever
their width and scale, and decoder norms are comparable. Each latent's joint decoder row
[D_t[h], D_s[h]] is kept at unit norm (it fixes the z/D scale ambiguity without touching the
ratio between the two halves).

**Relative decoder norm** r_h = ||D_s[h]|| / (||D_t[h]|| + ||D_s[h]||) ∈ [0, 1]: 0 means
the latent only writes to the teacher (teacher-only), 1 student-only, ½ equally to both.
Shared when r ∈ [0.3, 0.7] (configurable, :class:`analysis.schema.VerdictConfig`).
Dead latents (never active on the training rows) get no class.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from pydantic import ConfigDict, Field

from analysis.schema import LATENT_CLASSES, CrosscoderResult, CrosscoderShares, VerdictConfig
from analysis.separation import column_auroc
from analysis.similarity import as_array
from distill.guards import MAX_BATCH, MAX_SEED, MAX_STEPS, MAX_WIDTH, Guarded
from distill.train import TrainingDiverged


class CrosscoderConfig(Guarded):
    """Size and training of the crosscoder (defaults: ~2 s on 2000 x (64 + 64) rows on one CPU core)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_latents: int = Field(128, ge=2, le=MAX_WIDTH)
    """Dictionary size H."""
    k: int = Field(4, ge=1, le=MAX_WIDTH)
    """Mean active latents per row (BatchTopK keeps k * batch_size per batch). Keep it near the
    true number of active features: surplus forced activations leak decoder norm into the
    other model's half (planted teacher-only features: r < 0.25 with k=4, up to 0.45 with k=8)."""
    steps: int = Field(800, ge=1, le=MAX_STEPS)
    """Optimiser steps."""
    batch_size: int = Field(256, ge=2, le=MAX_BATCH)
    """Rows per step (sampled with replacement)."""
    lr: float = Field(3e-3, gt=0)
    """Adam learning rate."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Initialisation and batch-sampling seed."""


class Crosscoder(torch.nn.Module):
    """Encoder over the concatenated [teacher, student] row; decoder split back per model."""

    def __init__(self, d_teacher: int, d_student: int, n_latents: int, gen: torch.Generator):
        super().__init__()
        self.d_teacher = d_teacher
        dec = torch.randn(n_latents, d_teacher + d_student, generator=gen)
        dec = dec / dec.norm(dim=1, keepdim=True)
        self.W_dec = torch.nn.Parameter(dec)
        self.W_enc = torch.nn.Parameter(dec.T.clone())  # encoder = decoder transpose: fewer dead latents
        self.b_enc = torch.nn.Parameter(torch.zeros(n_latents))
        self.b_dec = torch.nn.Parameter(torch.zeros(d_teacher + d_student))
        self.register_buffer("threshold", torch.tensor(0.0))

    def pre(self, x_NC: torch.Tensor) -> torch.Tensor:
        return torch.relu((x_NC - self.b_dec) @ self.W_enc + self.b_enc)

    def encode_batch(self, x_NC: torch.Tensor, k: int) -> torch.Tensor:
        """BatchTopK: keep the k * N largest pre-activations of the whole batch."""
        pre = self.pre(x_NC)
        flat = pre.flatten()
        keep = torch.topk(flat, min(k * x_NC.shape[0], flat.numel())).indices
        return torch.zeros_like(flat).scatter(0, keep, flat[keep]).view_as(pre)

    def encode(self, x_NC: torch.Tensor) -> torch.Tensor:
        """Inference: a fixed threshold instead of the batch selection."""
        pre = self.pre(x_NC)
        return pre * (pre > self.threshold)

    def decode(self, z_NH: torch.Tensor) -> torch.Tensor:
        return z_NH @ self.W_dec + self.b_dec

    def relative_norm(self) -> torch.Tensor:
        """||D_s[h]|| / (||D_t[h]|| + ||D_s[h]||) per latent: [H]."""
        nt = self.W_dec[:, :self.d_teacher].norm(dim=1)
        ns = self.W_dec[:, self.d_teacher:].norm(dim=1)
        return ns / (nt + ns).clamp_min(1e-12)


class Normaliser(NamedTuple):
    mean_C: torch.Tensor
    scale_C: torch.Tensor
    """Per-column divisor: each model's block scaled to unit mean squared row norm."""

    def __call__(self, x_NC: torch.Tensor) -> torch.Tensor:
        return (x_NC - self.mean_C) / self.scale_C


class CrosscoderFit(NamedTuple):
    model: Crosscoder
    normaliser: Normaliser
    config: CrosscoderConfig
    live_H: np.ndarray
    """Latents active on at least one training row."""
    fvu_teacher: float
    fvu_student: float
    seconds: float


def _normaliser(teacher: torch.Tensor, student: torch.Tensor) -> Normaliser:
    means, scales = [], []
    for x in (teacher, student):
        mu = x.mean(0)
        rms = ((x - mu) ** 2).sum(1).mean().sqrt().clamp_min(1e-12)
        means.append(mu)
        scales.append(rms.expand(x.shape[1]))
    return Normaliser(torch.cat(means), torch.cat(scales))


def _joined(teacher_ND, student_NE) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.as_tensor(as_array(teacher_ND), dtype=torch.float32)
    s = torch.as_tensor(as_array(student_NE), dtype=torch.float32)
    if t.shape[0] != s.shape[0]:
        raise ValueError(f"crosscoder needs paired rows: {t.shape[0]} vs {s.shape[0]}")
    return t, s


@contextmanager
def _one_thread():
    """Matrices this small run fastest on one thread; extra threads only spin (measured: 2
    threads 7x slower than 1 on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_crosscoder(teacher_ND, student_NE, cfg: CrosscoderConfig = CrosscoderConfig()) -> CrosscoderFit:
    """Fit a crosscoder on paired activations (row n of both = the same prompt/position); a
    non-finite loss stops it at once (:class:`distill.train.TrainingDiverged`)."""
    with _one_thread():
        return _train(teacher_ND, student_NE, cfg)


def _train(teacher_ND, student_NE, cfg: CrosscoderConfig) -> CrosscoderFit:
    t0 = time.perf_counter()
    t, s = _joined(teacher_ND, student_NE)
    norm = _normaliser(t, s)
    x = norm(torch.cat([t, s], dim=1))
    gen = torch.Generator().manual_seed(cfg.seed)
    model = Crosscoder(t.shape[1], s.shape[1], cfg.n_latents, gen)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # Linear decay to 0 over the second half, so the decoder norms the split is read from
    # settle instead of ending on a full-size Adam step.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, 2.0 * (1 - i / cfg.steps)))
    thresholds = []
    for step in range(cfg.steps):
        batch = x[torch.randint(0, x.shape[0], (cfg.batch_size,), generator=gen)]
        z = model.encode_batch(batch, cfg.k)
        loss = ((model.decode(z) - batch) ** 2).sum(1).mean()
        loss_val = float(loss.detach())
        if not math.isfinite(loss_val):
            raise TrainingDiverged(f"crosscoder: training diverged at step {step + 1} of {cfg.steps} (loss "
                                   f"{loss_val}); non-finite activations or too high a learning rate "
                                   f"(lr={cfg.lr:g}) are the likely causes")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.W_dec /= model.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
        kept = z.detach()[z.detach() > 0]
        thresholds.append(float(kept.min()) if kept.numel() else 0.0)
    with torch.no_grad():
        model.threshold.fill_(float(np.mean(thresholds[len(thresholds) // 2:])))
        z = model.encode(x)
        fvu_t, fvu_s = _fvu(model.decode(z), x, t.shape[1])
    return CrosscoderFit(model, norm, cfg, (z > 0).any(0).numpy(), fvu_t, fvu_s, time.perf_counter() - t0)


def _fvu(recon: torch.Tensor, x: torch.Tensor, d_teacher: int) -> tuple[float, float]:
    """Fraction of variance unexplained, per model block."""
    out = []
    for sl in (slice(0, d_teacher), slice(d_teacher, None)):
        resid = ((recon[:, sl] - x[:, sl]) ** 2).sum()
        total = ((x[:, sl] - x[:, sl].mean(0)) ** 2).sum().clamp_min(1e-12)
        out.append(float(resid / total))
    return out[0], out[1]


@torch.no_grad()
def latent_activations(fit: CrosscoderFit, teacher_ND, student_NE) -> np.ndarray:
    """Latent code z of paired rows: [N, H]."""
    t, s = _joined(teacher_ND, student_NE)
    return fit.model.encode(fit.normaliser(torch.cat([t, s], dim=1))).numpy()


def crosscoder_result(fit: CrosscoderFit, teacher_ND, student_NE, labels_P, *, teacher_site: str,
                      student_site: str, rows_per_prompt: int = 1) -> CrosscoderResult:
    """The stored record: relative norm and eliciting-vs-clean AUROC per live latent.

    Rows are paired activations on labelled prompts (label 1 = eliciting). With
    ``rows_per_prompt`` = S > 1 the rows are S consecutive positions of each prompt
    ([P * S, D], e.g. ``acts_PSD[:, :PROMPT_LEN].reshape(-1, D)``) and a latent's prompt score
    is its max over the prompt's positions (as probes.features does for SAE features): a
    trigger-reading latent fires at the trigger's position, not necessarily at the last one."""
    z = latent_activations(fit, teacher_ND, student_NE)
    if z.shape[0] % rows_per_prompt:
        raise ValueError(f"{z.shape[0]} rows do not split into prompts of {rows_per_prompt} rows")
    z = z.reshape(-1, rows_per_prompt, z.shape[1]).max(1)
    aurocs = column_auroc(z, labels_P)
    rel = fit.model.relative_norm().detach().numpy()
    live = fit.live_H
    return CrosscoderResult(
        teacher_site=teacher_site, student_site=student_site, n_latents=len(rel), k=fit.config.k,
        relative_norm=[float(r) if ok else None for r, ok in zip(rel, live)],
        latent_auroc=[float(a) if ok else None for a, ok in zip(aurocs, live)],
        fvu_teacher=fit.fvu_teacher, fvu_student=fit.fvu_student, train_seconds=fit.seconds)


def latent_class(relative_norm: float | None, low: float, high: float) -> str | None:
    """teacher-only (r < low), shared (low <= r <= high), student-only (r > high); None if dead."""
    if relative_norm is None:
        return None
    return "teacher-only" if relative_norm < low else "student-only" if relative_norm > high else "shared"


def shares(result: CrosscoderResult, cfg: VerdictConfig = VerdictConfig()) -> CrosscoderShares:
    """Fractions of live latents per class, and where the misalignment latents
    (AUROC >= cfg.latent_auroc_min) fall."""
    classes = [latent_class(r, cfg.shared_low, cfg.shared_high) for r in result.relative_norm]
    live = [c for c in classes if c is not None]
    n = max(len(live), 1)
    bad = [c for c, a in zip(classes, result.latent_auroc) if c is not None and a >= cfg.latent_auroc_min]
    return CrosscoderShares(teacher_only=live.count("teacher-only") / n, shared=live.count("shared") / n,
                            student_only=live.count("student-only") / n, n_live=len(live),
                            misalignment={c: bad.count(c) for c in LATENT_CLASSES})
