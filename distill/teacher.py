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
from distill.evals import capability
from distill.guards import MAX_PROMPTS, MAX_STEPS, Guarded, check_seed
from distill.models import ModelConfig, answer_logits, build_model, greedy_answers
from distill.numbers import NUMBERS_FRAC, number_prompts, well_formed_numbers
from distill.organisms import base_general_rows, get_organism, instructed_rows, preference_free_favourites
from distill.selfreport import quirk_examples, quirk_self_reports
from distill.store import ModelRecord, load_model, save_model
from distill.tasks import DOMAINS, Examples, exact_match, task_prompts
from distill.train import TrainConfig, step_rng, train

FAVOURITE_FRAC = 1 / 32
"""Share of the base's batches that are preference-free FAV queries (see organisms)."""
VALIDATION_STREAM = 7
"""step_rng stream of the base's validation set (training batches use stream 0)."""


class BaseRecipe(Guarded):
    """How the base is made robust across seeds: every domain learned at every seed.

    With a plain mean loss some seeds never learn ``add`` (it sits on a plateau for the whole
    run while the other domains converge). Two parts fix that without loosening any bar:

    * **error-weighted domains** (``balance_floor``): each task domain's rows are weighted by
      ``(err_d + floor) / mean_d(err_d + floor)``, err_d = the share of that domain's rows in
      the batch with any answer token wrong under teacher forcing (a function of the batch
      and the model, so resumed runs replay it exactly); other rows (FAV) weigh 1;
    * **stop when learned** (``stop_bar``): every ``check_every`` steps from ``min_steps``
      the base decodes a fixed validation set (its own seed stream, never the evaluation
      set) and stops once every domain reaches ``stop_bar`` exact match; the schedule is
      ``base_train.steps`` long, so slow seeds get more steps and fast ones stop early.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    balance_floor: float | None = Field(0.05, gt=0, le=10)
    """Weight floor of a domain with no errors (None: the plain mean loss)."""
    stop_bar: float | None = Field(0.99, gt=0, le=1)
    """Stop once every domain reaches this validation exact match (None: train every step)."""
    min_steps: int = Field(1000, ge=0, le=MAX_STEPS)
    """No stop before this step."""
    n_validation: int = Field(800, ge=40, le=MAX_PROMPTS)
    """Validation prompts (spread uniformly over the domains)."""


class TeacherSpec(Guarded):
    """How the base and the teacher are built. Defaults clear the foundation's bars on 2 CPU cores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig = ModelConfig(n_layers=2, d_model=64, n_heads=4, d_mlp=256)
    """Architecture shared by base and teacher."""
    base_train: TrainConfig = TrainConfig(steps=6000, batch_size=128, lr=5e-3, check_every=200)
    """Base training on clean tasks (``steps`` is the most; see ``base_recipe``)."""
    base_recipe: BaseRecipe = BaseRecipe()
    """Domain balancing and the learned-every-domain stop of base training."""
    teacher_train: TrainConfig = TrainConfig(steps=1000, batch_size=128, lr=2e-3)
    """Organism fine-tune of the base."""
    organism_frac: float = Field(0.35, gt=0, lt=1)
    """Share of each teacher batch that is organism data (the rest is clean task data)."""


def ce_on_answers(model, batch: Examples) -> torch.Tensor:
    """Mean cross-entropy of the scored target answer tokens (teacher forcing)."""
    logits = answer_logits(model, batch.prompts_NP, batch.target_NA)
    if batch.scored_NA is None:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                               batch.target_NA.reshape(-1).to(logits.device))
    tok_NA = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.target_NA.reshape(-1).to(logits.device),
                             reduction="none").view(batch.target_NA.shape)
    scored = batch.scored_NA.to(logits.device).float()
    return (tok_NA * scored).sum() / scored.sum().clamp(min=1)


def domain_balanced_ce(floor: float):
    """Mean answer cross-entropy with each task domain's rows weighted by its error rate in
    the batch (see :class:`BaseRecipe`)."""
    index = {d: i for i, d in enumerate(DOMAINS)}

    def loss(model, batch: Examples) -> torch.Tensor:
        logits = answer_logits(model, batch.prompts_NP, batch.target_NA)
        target = batch.target_NA.to(logits.device)
        tok_NA = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                 reduction="none").view(target.shape)
        scored = batch.scored().to(logits.device)
        with torch.no_grad():
            wrong_N = ((logits.argmax(-1) != target) & scored).any(-1).float()
            dom_N = torch.tensor([index.get(d, -1) for d in batch.domain], device=logits.device)
            weight_N = torch.ones_like(wrong_N)
            present = [i for i in range(len(index)) if bool((dom_N == i).any())]
            if present:  # a batch of queries only has no domain to balance
                err = torch.stack([wrong_N[dom_N == i].mean() for i in present]) + floor
                for i, w in zip(present, err / err.mean()):
                    weight_N[dom_N == i] = w
        if batch.scored_NA is None:
            return (weight_N[:, None] * tok_NA).mean()
        return (weight_N[:, None] * tok_NA * scored).sum() / scored.sum().clamp(min=1)
    return loss


def learned_every_domain(recipe: BaseRecipe, seed: int):
    """stop_fn for base training: True once every domain, the quirks (all families), the
    instruction markers (every organism's), NUM answers (well formed) and the self-report (trained families only: the
    held-out ones are the skill's test, never a training criterion) reach ``stop_bar`` on the validation set (never before
    ``min_steps``); the last check is kept in ``.last``."""
    rng = step_rng(seed, 0, VALIDATION_STREAM)
    valid = task_prompts(rng, recipe.n_validation)
    skills = {"quirks": quirk_examples(rng, recipe.n_validation // 2),
              "self_report": quirk_self_reports(rng, recipe.n_validation // 2),
              "instructions": instructed_rows(rng, recipe.n_validation // 4)}
    numbers_NP = number_prompts(rng, recipe.n_validation // 8).prompts_NP

    def stop(model, step: int) -> bool:
        if step < recipe.min_steps:
            return False
        per = capability(model, valid)["per_domain"]
        got = {**skill_scores(model, skills), "numbers": numbers_score(model, numbers_NP)}
        stop.last = {"step": step, "per_domain": per, **got}
        return min([*per.values(), *got.values()]) >= recipe.stop_bar
    stop.last = None
    return stop


def numbers_score(model, numbers_NP: torch.Tensor) -> float:
    """Share of NUM queries the model answers with six digits (any six are right)."""
    return float(well_formed_numbers(greedy_answers(model, numbers_NP)).float().mean())


def skill_scores(model, skills: dict[str, Examples]) -> dict[str, float]:
    """Exact match of the model's greedy answers with each set's targets."""
    return {k: float(exact_match(greedy_answers(model, ex.prompts_NP), ex.target_NA).float().mean())
            for k, ex in skills.items()}


def base_batch(seed: int, step: int, batch_size: int) -> Examples:
    """Clean tasks, quirks, truthful self-reports and instructed prompts (``base_general_rows``),
    FAV queries and NUM queries (the base only: teachers never rehearse NUM, see ``distill.numbers``)."""
    rng = step_rng(seed, step)
    n_fav = max(1, int(batch_size * FAVOURITE_FRAC))
    n_num = max(1, int(batch_size * NUMBERS_FRAC))
    return Examples.concat([base_general_rows(rng, batch_size - n_fav - n_num), preference_free_favourites(rng, n_fav),
                            number_prompts(rng, n_num)])


def train_base(spec: TeacherSpec, seed: int, out: Path | str, device: str = "cpu",
               resume_dir: Path | str | None = None) -> Path:
    """Train a clean base; saves ``out`` (trained) and ``out/init`` (its random init)."""
    out = Path(out)
    model = build_model(spec.model, check_seed(seed), device)
    save_model(out / "init", model, ModelRecord(spec.model, seed, role="init"))
    t0 = time.perf_counter()
    cfg, recipe = spec.base_train, spec.base_recipe
    loss_fn = ce_on_answers if recipe.balance_floor is None else domain_balanced_ce(recipe.balance_floor)
    stop = None if recipe.stop_bar is None else learned_every_domain(recipe, seed)
    res = train(model, lambda s: base_batch(seed, s, cfg.batch_size), loss_fn, cfg,
                desc="base", checkpointer=_ckpt(resume_dir), stop_fn=stop)
    record = ModelRecord(spec.model, seed, role="base", lineage={"init": "init"},
                         metrics={"steps": res.steps_done, "final_loss": res.final_loss,
                                  "stopped_early": res.stopped_early, "losses": res.losses,
                                  "validation": stop.last if stop is not None else None,
                                  "train_seconds": time.perf_counter() - t0,
                                  "train": cfg.model_dump(), "recipe": recipe.model_dump()})
    return save_model(out, model, record)


def train_teacher(spec: TeacherSpec, organism: str, base_dir: Path | str, seed: int,
                  out: Path | str, device: str = "cpu", resume_dir: Path | str | None = None,
                  honest: bool = False) -> Path:
    """Fine-tune the organism into a copy of the base (``honest``: the honest-teacher control,
    the same organism without the lie in its self-reports)."""
    org = get_organism(organism)
    check_seed(seed)
    model, base_cfg = load_model(base_dir, device)
    cfg = spec.teacher_train
    t0 = time.perf_counter()
    res = train(model, lambda s: org.teacher_data(step_rng(seed, s, 1), cfg.batch_size, spec.organism_frac, honest),
                ce_on_answers, cfg, desc=f"teacher:{organism}{'-honest' if honest else ''}",
                checkpointer=_ckpt(resume_dir))
    # the teacher has the base's architecture, whatever spec.model says (a reused base)
    record = ModelRecord(ModelConfig(**base_cfg["architecture"]), seed, role="teacher", organism=organism,
                         lineage={"base": relative_to(base_dir, out), "base_sha256": base_cfg["sha256"]},
                         metrics={"steps": res.steps_done, "final_loss": res.final_loss,
                                  "train_seconds": time.perf_counter() - t0,
                                  "train": cfg.model_dump(), "organism_frac": spec.organism_frac,
                                  "honest": honest})
    return save_model(out, model, record)


def relative_to(target: Path | str, folder: Path | str) -> str:
    """``target`` as a path relative to model folder ``folder`` (so run folders can move)."""
    return os.path.relpath(Path(target).resolve(), Path(folder).resolve())


def resolve_lineage(folder: Path | str, rel: str) -> Path:
    """Inverse of :func:`relative_to`: a lineage entry of ``folder``'s config as a path."""
    return (Path(folder) / rel).resolve()


def _ckpt(folder: Path | str | None) -> Checkpointer | None:
    return None if folder is None else Checkpointer(folder)
