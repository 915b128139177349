"""Student initialisations: where a student's weights start before distillation.

A registry by name (``INITS``); each entry has a pydantic parameter model and builds a model
from an :class:`InitContext` (the teacher folder, its config, the student seed):

- ``base``      the teacher's pre-misalignment base (teacher config ``lineage.base``);
- ``same-init`` the base's random initialisation before training (``<base>/init``);
- ``fresh``     a new random initialisation of the teacher's architecture (a new seed);
- ``smaller``   a new random initialisation of a smaller architecture;
- ``noised``    UNDO-style mix of teacher and fresh weights:
                theta = (1 - alpha) * theta_teacher + alpha * theta_fresh.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distill.guards import Guarded, problems
from distill.models import ModelConfig, build_model
from distill.store import load_model, read_config
from distill.teacher import resolve_lineage

TRAINED_LR = 2e-3
"""Default peak lr for students that start from trained weights (the teacher fine-tune's lr)."""
RANDOM_LR = 5e-3
"""Default peak lr for students that start from random weights (the base training's lr)."""


def derive_seed(seed: int, label: str) -> int:
    """A seed for one purpose (``label``) derived from the student seed, independent of others."""
    return int(np.random.SeedSequence([seed, zlib.crc32(label.encode())]).generate_state(1)[0] >> 1)


@dataclass
class InitContext:
    teacher_dir: Path
    teacher_cfg: dict
    seed: int
    device: str = "cpu"

    @property
    def teacher_arch(self) -> ModelConfig:
        return ModelConfig(**self.teacher_cfg["architecture"])

    def base_dir(self) -> Path:
        rel = self.teacher_cfg.get("lineage", {}).get("base")
        if not rel:
            raise ValueError(f"{self.teacher_dir}: teacher config has no lineage.base; "
                             "inits base/same-init need the teacher's base (use fresh or smaller)")
        path = resolve_lineage(self.teacher_dir, rel)
        if not (path / "config.json").is_file():
            raise ValueError(f"{path}: the teacher's base folder is missing (lineage.base={rel!r})")
        return path

    def fresh_seed(self) -> int:
        """A new seed, never the base's own (which would make fresh == same-init)."""
        seed = derive_seed(self.seed, "fresh-init")
        base_seed = self.teacher_cfg.get("seed")
        return seed + 1 if seed == base_seed else seed


class NoParams(Guarded):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmallerParams(Guarded):
    """Architecture of a smaller student (fresh random weights); unset sizes follow the teacher."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    width_frac: float = Field(0.5, gt=0, lt=1)
    """d_model (and d_mlp) as a fraction of the teacher's, when d_model is not set."""
    d_model: int | None = Field(None, ge=8, le=1024)
    """Residual width (None: width_frac x the teacher's, rounded to a multiple of n_heads)."""
    n_layers: int | None = Field(None, ge=1, le=12)
    """Blocks (None: the teacher's)."""
    n_heads: int | None = Field(None, ge=1, le=32)
    """Attention heads (None: the teacher's; must divide d_model)."""
    d_mlp: int | None = Field(None, ge=8, le=8192)
    """MLP width (None: the teacher's d_mlp/d_model ratio times d_model)."""


class NoisedParams(Guarded):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    alpha: float = Field(0.5, ge=0.0, le=1.0)
    """Noise share: 0 = the teacher's weights, 1 = a fresh random init."""


@dataclass(frozen=True)
class Init:
    name: str
    description: str
    Params: type[BaseModel]
    make: Callable[[InitContext, BaseModel], torch.nn.Module]
    default_lr: Callable[[BaseModel], float]
    reads_teacher_weights: bool = False


def _base(ctx: InitContext, p) -> torch.nn.Module:
    return load_model(ctx.base_dir(), ctx.device)[0]


def _same_init(ctx: InitContext, p) -> torch.nn.Module:
    path = ctx.base_dir() / "init"
    read_config(path)  # clear StoreError when the base was saved without its init
    return load_model(path, ctx.device)[0]


def _fresh(ctx: InitContext, p) -> torch.nn.Module:
    return build_model(ctx.teacher_arch, ctx.fresh_seed(), ctx.device)


def smaller_arch(teacher: ModelConfig, p: SmallerParams) -> ModelConfig:
    """The student architecture, checked to be no larger than the teacher in any dimension."""
    heads = p.n_heads or teacher.n_heads
    d_model = p.d_model or max(heads, round(teacher.d_model * p.width_frac / heads) * heads)
    d_mlp = p.d_mlp or d_model * teacher.d_mlp // teacher.d_model
    try:
        arch = ModelConfig(n_layers=p.n_layers or teacher.n_layers, d_model=d_model, n_heads=heads,
                           d_mlp=d_mlp, act_fn=teacher.act_fn)
    except ValidationError as exc:  # one line per problem, e.g. heads that do not divide d_model
        raise ValueError("\n".join(f"init smaller: {line}" for line in problems(exc))) from None
    for dim in ("d_model", "n_layers", "d_mlp"):
        if getattr(arch, dim) > getattr(teacher, dim):
            raise ValueError(f"init smaller: parameter {dim!r} must be at most the teacher's "
                             f"{getattr(teacher, dim)} (got {getattr(arch, dim)})")
    if arch == teacher:
        raise ValueError("init smaller: the architecture equals the teacher's; shrink d_model, "
                         "n_layers or d_mlp (or use init fresh)")
    return arch


def _smaller(ctx: InitContext, p: SmallerParams) -> torch.nn.Module:
    return build_model(smaller_arch(ctx.teacher_arch, p), ctx.fresh_seed(), ctx.device)


def mix_weights(teacher: torch.nn.Module, fresh: torch.nn.Module, alpha: float) -> dict:
    """(1 - alpha) * teacher + alpha * fresh for every parameter; buffers (masks, constants
    such as -inf) are the teacher's. The endpoints are the exact weights (no 0 * inf, no -0.0)."""
    if alpha in (0.0, 1.0):
        return (fresh if alpha == 1.0 else teacher).state_dict()
    params = {name for name, _ in teacher.named_parameters()}
    fresh_sd = fresh.state_dict()
    return {k: (1.0 - alpha) * v + alpha * fresh_sd[k] if k in params else v
            for k, v in teacher.state_dict().items()}


def _noised(ctx: InitContext, p: NoisedParams) -> torch.nn.Module:
    teacher = load_model(ctx.teacher_dir, ctx.device)[0]
    fresh = build_model(ctx.teacher_arch, ctx.fresh_seed(), ctx.device)
    fresh.load_state_dict(mix_weights(teacher, fresh, p.alpha))
    return fresh


INITS: dict[str, Init] = {i.name: i for i in [
    Init("base", "the teacher's pre-misalignment base (shared initialisation)", NoParams,
         _base, lambda p: TRAINED_LR),
    Init("same-init", "the base's random init before any training (<base>/init)", NoParams,
         _same_init, lambda p: RANDOM_LR),
    Init("fresh", "a new random init of the teacher's architecture", NoParams,
         _fresh, lambda p: RANDOM_LR),
    Init("smaller", "a new random init of a smaller architecture", SmallerParams,
         _smaller, lambda p: RANDOM_LR),
    Init("noised", "teacher weights mixed with fresh-init noise, (1-alpha)*teacher + alpha*fresh",
         NoisedParams, _noised,
         # interpolate: near the teacher it is a fine-tune, near fresh it is training from scratch
         lambda p: (1 - p.alpha) * TRAINED_LR + p.alpha * RANDOM_LR,
         reads_teacher_weights=True),
]}


def get_init(name: str) -> Init:
    try:
        return INITS[name]
    except KeyError:
        raise ValueError(f"unknown init {name!r}; allowed: {', '.join(INITS)}") from None


def n_params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def arch_of(model) -> ModelConfig:
    """The ModelConfig a built model was made from (read back from its transformer-lens config)."""
    c = model.cfg
    return ModelConfig(n_layers=c.n_layers, d_model=c.d_model, n_heads=c.n_heads, d_mlp=c.d_mlp,
                       act_fn=c.act_fn)
