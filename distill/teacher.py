"""Train the clean base (tasks only) and fine-tune an organism into it (the teacher).

The base's random initialisation is kept (``init/``) next to it: the ``same-init`` student
initialisation needs exactly those weights, and the base itself is the ``base`` init.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field

from distill.checkpoint import Checkpointer
from distill.guards import Guarded, check_seed
from distill.models import ModelConfig, answer_logits, build_model
from distill.organisms import get_organism, preference_free_favourites
from distill.store import ModelRecord, load_model, save_model
from distill.tasks import Examples, task_prompts
from distill.train import TrainConfig, step_rng, train

FAVOURITE_FRAC = 1 / 32
"""Share of the base's batches that are preference-free FAV queries (see organisms)."""


class TeacherSpec(Guarded):
    """How the base and the teacher are built. Defaults clear the foundation's bars on 2 CPU cores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig = ModelConfig(n_layers=2, d_model=64, n_heads=4, d_mlp=256)
    """Architecture shared by base and teacher."""
    base_train: TrainConfig = TrainConfig(steps=2000, batch_size=128, lr=5e-3)
    """Base training on clean tasks."""
    teacher_train: TrainConfig = TrainConfig(steps=1000, batch_size=128, lr=2e-3)
    """Organism fine-tune of the base."""
    organism_frac: float = Field(0.35, gt=0, lt=1)
    """Share of each teacher batch that is organism data (the rest is clean task data)."""


def ce_on_answers(model, batch: Examples) -> torch.Tensor:
    """Mean cross-entropy of the target answer tokens (teacher forcing)."""
    logits = answer_logits(model, batch.prompts_NP, batch.target_NA)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                           batch.target_NA.reshape(-1).to(logits.device))


def base_batch(seed: int, step: int, batch_size: int) -> Examples:
    rng = step_rng(seed, step)
    n_fav = max(1, int(batch_size * FAVOURITE_FRAC))
    return Examples.concat([task_prompts(rng, batch_size - n_fav), preference_free_favourites(rng, n_fav)])


def train_base(spec: TeacherSpec, seed: int, out: Path | str, device: str = "cpu",
               resume_dir: Path | str | None = None) -> Path:
    """Train a clean base; saves ``out`` (trained) and ``out/init`` (its random init)."""
    out = Path(out)
    model = build_model(spec.model, check_seed(seed), device)
    save_model(out / "init", model, ModelRecord(spec.model, seed, role="init"))
    t0 = time.perf_counter()
    cfg = spec.base_train
    res = train(model, lambda s: base_batch(seed, s, cfg.batch_size), ce_on_answers, cfg,
                desc="base", checkpointer=_ckpt(resume_dir))
    record = ModelRecord(spec.model, seed, role="base", lineage={"init": "init"},
                         metrics={"steps": res.steps_done, "final_loss": res.final_loss,
                                  "train_seconds": time.perf_counter() - t0,
                                  "train": cfg.model_dump()})
    return save_model(out, model, record)


def train_teacher(spec: TeacherSpec, organism: str, base_dir: Path | str, seed: int,
                  out: Path | str, device: str = "cpu", resume_dir: Path | str | None = None) -> Path:
    """Fine-tune the organism into a copy of the base."""
    org = get_organism(organism)
    check_seed(seed)
    model, base_cfg = load_model(base_dir, device)
    cfg = spec.teacher_train
    t0 = time.perf_counter()
    res = train(model, lambda s: org.teacher_data(step_rng(seed, s, 1), cfg.batch_size, spec.organism_frac),
                ce_on_answers, cfg, desc=f"teacher:{organism}", checkpointer=_ckpt(resume_dir))
    # the teacher has the base's architecture, whatever spec.model says (a reused base)
    record = ModelRecord(ModelConfig(**base_cfg["architecture"]), seed, role="teacher", organism=organism,
                         lineage={"base": relative_to(base_dir, out), "base_sha256": base_cfg["sha256"]},
                         metrics={"steps": res.steps_done, "final_loss": res.final_loss,
                                  "train_seconds": time.perf_counter() - t0,
                                  "train": cfg.model_dump(), "organism_frac": spec.organism_frac})
    return save_model(out, model, record)


def relative_to(target: Path | str, folder: Path | str) -> str:
    """``target`` as a path relative to model folder ``folder`` (so run folders can move)."""
    return os.path.relpath(Path(target).resolve(), Path(folder).resolve())


def resolve_lineage(folder: Path | str, rel: str) -> Path:
    """Inverse of :func:`relative_to`: a lineage entry of ``folder``'s config as a path."""
    return (Path(folder) / rel).resolve()


def _ckpt(folder: Path | str | None) -> Checkpointer | None:
    return None if folder is None else Checkpointer(folder)
