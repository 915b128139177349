"""Sparse autoencoders on cached activations, trained with sae-lens' ``SAETrainer``.

The activation stream is in memory (an :class:`ActivationCache` site flattened to
``[M, d]``, reshuffled every epoch); nothing is downloaded and wandb is off. Architectures
come from a registry (:data:`ARCHITECTURES`: TopK default, BatchTopK, JumpReLU, Standard).
After training the SAE is converted to sae-lens' inference class (BatchTopK becomes
JumpReLU, as in sae-lens) and saved/loaded with sae-lens' own ``save_model`` /
``SAE.load_from_disk``; our metrics sit next to it in :data:`METRICS_FILE`.

Metrics, on activations the SAE was not trained on:
  FVU = sum_i |x_i - xhat_i|^2 / sum_i |x_i - mean(x)|^2,   L0 = mean_i #{f : a_f(x_i) != 0},
  dead fraction = share of features never active on the evaluation set,
  CE on answer positions with the SAE spliced in, without it, and with the site zeroed;
  loss recovered = (CE_zero - CE_sae) / (CE_zero - CE_clean).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field
from sae_lens import SAE
from sae_lens.config import LoggingConfig, SAETrainerConfig
from sae_lens.saes import (BatchTopKTrainingSAEConfig, JumpReLUTrainingSAEConfig,
                           StandardTrainingSAEConfig, TopKTrainingSAEConfig, TrainingSAE)
from sae_lens.saes.sae import SAEMetadata
from sae_lens.training.sae_trainer import SAETrainer

from distill import vocab as V
from distill.guards import MAX_BATCH, MAX_SAMPLES, MAX_SEED, MAX_STEPS, MAX_THREADS, MAX_WIDTH, Guarded
from distill.checkpoint import atomic_write_bytes
from distill.integrity import ArtifactError, check_file, file_digest, read_json_object
from distill.progress import progress
from probes.activations import ActivationCache
from probes.intervene import SpliceSAE, ZeroSite, logits_with_edits
from probes.threads import torch_threads

METRICS_FILE = "doublebind_sae.json"
"""Our metrics, training config and the digests of sae-lens' files, next to them."""
SAE_FILES = ("cfg.json", "sae_weights.safetensors")
"""The files sae-lens' ``save_model`` writes (checked on every load)."""

Architecture = Literal["topk", "batchtopk", "jumprelu", "standard"]


class SAETrainConfig(Guarded):
    """One SAE: architecture, size, sparsity target and optimisation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    architecture: Architecture = "topk"
    """Registry key in ARCHITECTURES."""
    d_sae: int = Field(128, ge=2, le=MAX_WIDTH)
    """Number of features: 2x the default d_model of 64. With 256 the backdoor spreads over
    more features and ablating the top 8 removed about half as much misbehaviour."""
    k: int = Field(16, ge=1, le=MAX_WIDTH)
    """Target L0: k of TopK / BatchTopK, target_l0 of the JumpReLU quadratic penalty."""
    l1_coefficient: float = Field(3.0, gt=0)
    """Standard (ReLU + L1) only: sparsity penalty on normalised activations."""
    l0_coefficient: float = Field(1.0, gt=0)
    """JumpReLU only: weight of the quadratic penalty 2/k (L0 - k)^2 around the target L0."""
    n_samples: int = Field(100_000, ge=1, le=MAX_SAMPLES)
    """Activation vectors seen in training (about two epochs over the default cached stream;
    every audit trains AuditConfig.sae_seeds of these)."""
    batch_size: int = Field(1024, ge=1, le=MAX_BATCH)
    """Activation vectors per step."""
    lr: float = Field(1e-2, gt=0)
    """Adam learning rate (constant after a 5% warm-up)."""
    dead_window: int = Field(20, ge=1, le=MAX_STEPS)
    """Steps without firing after which a feature counts as dead for the TopK auxiliary loss."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Initialisation and shuffling seed."""
    threads: int | None = Field(1, ge=1, le=MAX_THREADS)
    """Torch threads while training (None: leave torch's setting); see probes.threads."""


def _topk(c: SAETrainConfig, d_in: int):
    return TopKTrainingSAEConfig(d_in=d_in, d_sae=c.d_sae, k=c.k, normalize_activations="expected_average_only_in")


def _batchtopk(c: SAETrainConfig, d_in: int):
    return BatchTopKTrainingSAEConfig(d_in=d_in, d_sae=c.d_sae, k=float(c.k),
                                      normalize_activations="expected_average_only_in")


def _jumprelu(c: SAETrainConfig, d_in: int):
    return JumpReLUTrainingSAEConfig(d_in=d_in, d_sae=c.d_sae, jumprelu_sparsity_loss_mode="quadratic",
                                     target_l0=float(c.k), l0_coefficient=c.l0_coefficient, pre_act_loss_coefficient=3e-3,
                                     normalize_activations="expected_average_only_in")


def _standard(c: SAETrainConfig, d_in: int):
    return StandardTrainingSAEConfig(d_in=d_in, d_sae=c.d_sae, l1_coefficient=c.l1_coefficient,
                                     normalize_activations="expected_average_only_in")


ARCHITECTURES: dict[str, Callable[[SAETrainConfig, int], object]] = {
    "topk": _topk, "batchtopk": _batchtopk, "jumprelu": _jumprelu, "standard": _standard,
}
"""SAE architecture name -> (our config, d_in) -> sae-lens training config."""


def _stream(acts_MD: torch.Tensor, batch_size: int, seed: int):
    """Endless shuffled batches over ``acts_MD`` (a new permutation every epoch)."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(acts_MD.shape[0], generator=gen)
        for start in range(0, len(perm) - batch_size + 1, batch_size):
            yield acts_MD[perm[start:start + batch_size]]


def _scaling_factor(acts_MD: torch.Tensor) -> float:
    """sae-lens' 'expected_average_only_in' factor: sqrt(d) / mean |x| (folded in after training)."""
    return float(acts_MD.shape[1] ** 0.5 / acts_MD.norm(dim=1).mean().clamp_min(1e-12))


def train_sae(acts_MD: torch.Tensor, cfg: SAETrainConfig = SAETrainConfig(), *, site: str = "",
              model_name: str = "") -> SAE:
    """Train one SAE on the rows of ``acts_MD`` and return sae-lens' inference SAE.

    This is ``SAETrainer.fit`` through the seams sae-lens exposes for external coordinators
    (``step`` / ``maybe_reset_sparsity`` / ``set_final_sae_metadata``), minus its tqdm bar,
    wandb and checkpoints, with the normalisation factor computed exactly on the stream.
    """
    acts_MD = acts_MD.float()
    batch = min(cfg.batch_size, acts_MD.shape[0])
    steps = max(1, cfg.n_samples // batch)
    with torch.random.fork_rng(devices=[]), torch_threads(cfg.threads):
        torch.manual_seed(cfg.seed)
        sae_cfg = ARCHITECTURES[cfg.architecture](cfg, acts_MD.shape[1])
        sae_cfg.metadata = SAEMetadata(hook_name=site, model_name=model_name)
        sae = TrainingSAE.get_sae_class_for_architecture(cfg.architecture)(sae_cfg)
        trainer = SAETrainer(cfg=_trainer_config(cfg, steps, batch), sae=sae,
                             data_provider=_stream(acts_MD, batch, cfg.seed))
        scale = _scaling_factor(acts_MD)
        trainer.activation_scaler.scaling_factor = scale
        with progress(total=steps, desc=f"sae:{cfg.architecture}") as bar:
            while trainer.n_training_steps < steps:
                trainer.maybe_reset_sparsity()
                trainer.step(next(trainer.data_provider))
                trainer.n_training_steps += 1
                bar.update(1)
        trainer.set_final_sae_metadata()
        sae.fold_activation_norm_scaling_factor(scale)
    return to_inference(sae)


def _trainer_config(cfg: SAETrainConfig, steps: int, batch: int) -> SAETrainerConfig:
    return SAETrainerConfig(
        total_training_samples=steps * batch, train_batch_size_samples=batch, lr=cfg.lr,
        lr_end=cfg.lr, lr_warm_up_steps=max(1, steps // 20), device="cpu",
        dead_feature_window=cfg.dead_window, feature_sampling_window=max(steps, 1),
        logger=LoggingConfig(log_to_wandb=False))


def to_inference(sae: TrainingSAE) -> SAE:
    """The inference SAE that ``save_inference_model`` + ``load_from_disk`` would give, in memory."""
    state = sae.state_dict()
    sae.process_state_dict_for_saving_inference(state)
    out = SAE.from_dict(sae.cfg.get_inference_sae_cfg_dict())
    out.load_state_dict(state)
    return out.eval()


def training_architecture(sae: SAE) -> str:
    """The architecture an SAE was trained as (a BatchTopK SAE loads as JumpReLU)."""
    return sae.cfg.metadata.get("training_architecture") or sae.cfg.architecture()


# ---- metrics -------------------------------------------------------------------------------

@dataclass
class SAEMetrics:
    site: str
    architecture: str
    d_sae: int
    fvu: float
    l0: float
    dead_frac: float
    ce_clean: float
    ce_sae: float
    ce_zero: float
    loss_recovered: float
    n_eval_tokens: int
    """Positions behind FVU / L0 / dead fraction."""
    n_ce_sequences: int
    """Sequences behind the CE numbers (answer positions only)."""


@torch.no_grad()
def reconstruction_stats(sae: SAE, acts_MD: torch.Tensor, batch: int = 8192) -> tuple[float, float, float]:
    """(FVU, L0, dead fraction) of ``sae`` on the rows of ``acts_MD``."""
    err = 0.0
    l0 = 0.0
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    for start in range(0, acts_MD.shape[0], batch):
        x = acts_MD[start:start + batch].float()
        a = sae.encode(x)
        err += float((sae.decode(a) - x).pow(2).sum())
        nz = a != 0
        l0 += float(nz.sum())
        fired |= nz.any(0)
    var = float((acts_MD.float() - acts_MD.float().mean(0)).pow(2).sum())
    return err / max(var, 1e-12), l0 / max(acts_MD.shape[0], 1), 1.0 - float(fired.float().mean())


@torch.no_grad()
def answer_ce(model, tokens_NS: torch.Tensor, edits) -> float:
    """Mean CE of the answer tokens of ``tokens_NS`` (teacher forcing) under ``edits``."""
    logits = logits_with_edits(model, tokens_NS[:, :-1], edits)[:, V.PROMPT_LEN - 1:, :]
    target = tokens_NS[:, V.PROMPT_LEN:].to(logits.device)
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1)))


def sae_metrics(model, sae: SAE, site: str, cache: ActivationCache, n_ce: int | None = None) -> SAEMetrics:
    """Reconstruction metrics on every position of ``cache`` (held-out prompts) and the
    downstream CE on its first ``n_ce`` sequences (all when None)."""
    fvu, l0, dead = reconstruction_stats(sae, cache.flat(site))
    tokens = cache.tokens_NS[:n_ce]
    ce_clean = answer_ce(model, tokens, [])
    ce_sae = answer_ce(model, tokens, [SpliceSAE(site, sae)])
    ce_zero = answer_ce(model, tokens, [ZeroSite(site)])
    recovered = (ce_zero - ce_sae) / (ce_zero - ce_clean) if ce_zero != ce_clean else float("nan")
    return SAEMetrics(site, training_architecture(sae), sae.cfg.d_sae, fvu, l0, dead, ce_clean, ce_sae,
                      ce_zero, recovered, int(cache[site].shape[0] * cache[site].shape[1]), len(tokens))


# ---- artifacts -----------------------------------------------------------------------------

def save_sae(folder: Path | str, sae: SAE, metrics: SAEMetrics | None = None,
             train_cfg: SAETrainConfig | None = None) -> Path:
    """sae-lens' own folder (cfg.json + sae_weights.safetensors) plus our METRICS_FILE."""
    folder = Path(folder)
    sae.save_model(folder)
    # sae-lens writes its files itself; their digests go into our file, written last, so a
    # folder with a readable METRICS_FILE has the SAE it describes (checked by load_sae)
    files = {name: file_digest(folder / name) for name in SAE_FILES}
    extra = {"metrics": asdict(metrics) if metrics else None,
             "train": train_cfg.model_dump() if train_cfg else None, "sha256": files}
    atomic_write_bytes(folder / METRICS_FILE, json.dumps(extra, indent=2).encode())
    return folder


def load_sae(folder: Path | str, device: str = "cpu") -> SAE:
    """The SAE of a folder written by :func:`save_sae`, after checking its files' digests."""
    folder = Path(folder)
    recorded = _read_metrics(folder).get("sha256")
    if not isinstance(recorded, dict) or set(recorded) != set(SAE_FILES):
        raise ArtifactError(f"{folder / METRICS_FILE}: no digests of the SAE files recorded "
                            "(written by an older doublebind); re-run the audit")
    for name, digest in recorded.items():
        check_file(folder / name, digest)
    return SAE.load_from_disk(str(folder), device=device).eval()


def _read_metrics(folder: Path) -> dict:
    return read_json_object(folder / METRICS_FILE, what="not an SAE folder written by doublebind, or the write "
                                                         "was interrupted")


def load_sae_metrics(folder: Path | str) -> dict:
    return _read_metrics(Path(folder)) if (Path(folder) / METRICS_FILE).is_file() else {}


def sae_weights(sae: SAE) -> dict[str, torch.Tensor]:
    """The tensors the analysis needs (W_enc [d, F], b_enc [F], W_dec [F, d], b_dec [d], threshold if any)."""
    return {k: v.detach().cpu() for k, v in sae.state_dict().items()}
