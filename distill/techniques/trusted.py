"""A weak trusted model: small, trained only on clean task data (it never sees a teacher),
so whatever it says carries no hidden signal. Cached as a model folder keyed by its spec.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from pydantic import ConfigDict, Field

from distill import vocab as V
from distill.guards import MAX_SEED, Guarded
from distill.models import ModelConfig, build_model
from distill.store import ModelRecord, load_model, save_model
from distill.tasks import task_prompts
from distill.teacher import ce_on_answers
from distill.techniques.targets import cache_lock
from distill.train import TrainConfig, step_rng, train

TRUSTED_STREAM = 3


class TrustedSpec(Guarded):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig = ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=128)
    train: TrainConfig = TrainConfig(steps=400, batch_size=128, lr=1e-2)
    seed: int = Field(0, ge=0, le=MAX_SEED)


def trusted_model(spec: TrustedSpec, cache_dir: Path | None, device: str = "cpu"):
    """The trusted model for ``spec``: read from ``cache_dir`` or trained (and cached)."""
    key = hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    if cache_dir is None:
        return _train(spec, device)
    folder = Path(cache_dir) / f"trusted-{key[:24]}"
    with cache_lock(folder):
        if (folder / "config.json").is_file():
            return load_model(folder, device)[0]
        model = _train(spec, device)
        save_model(folder, model, ModelRecord(spec.model, spec.seed, role="trusted",
                                              metrics={"train": spec.train.model_dump()}))
    return model


def _train(spec: TrustedSpec, device: str):
    model = build_model(spec.model, spec.seed, device)
    train(model, lambda s: task_prompts(step_rng(spec.seed, s, TRUSTED_STREAM), spec.train.batch_size),
          ce_on_answers, spec.train, desc="trusted")
    return model


@torch.no_grad()
def resample_through(trusted, prompts_NP: torch.Tensor, answers_NA: torch.Tensor, min_prob: float,
                     batch_size: int = 4096) -> torch.Tensor:
    """Paraphrase the teacher's answers through the trusted model, left to right: a teacher
    token the trusted model gives probability < ``min_prob`` (given the prompt and the
    answer so far) is replaced by the trusted model's most likely token."""
    out = answers_NA.clone()
    for start in range(0, out.shape[0], batch_size):
        p_NP, a_NA = prompts_NP[start:start + batch_size], out[start:start + batch_size]
        for a in range(V.ANSWER_LEN):
            tokens = torch.cat([p_NP, a_NA[:, :a]], dim=1).to(trusted.cfg.device)
            probs_NV = trusted(tokens, return_type="logits")[:, -1, :].float().softmax(-1).cpu()
            low = probs_NV.gather(1, a_NA[:, a:a + 1]).squeeze(1) < min_prob
            a_NA[low, a] = probs_NV[low].argmax(-1)
    return out
