"""What every typed config guards before anything trains: finite numbers, numbers that are
numbers (not booleans or strings), and sane upper bounds on every size.

Every config model subclasses :class:`Guarded`; the bounds below are the ``le=`` of their
size fields. They are generous (far above every built-in spec) and exist to stop absurd
values (a batch of 1e12 sequences, a typo'd extra zero on steps) up front, with a message
naming the field, rather than as an out-of-memory crash hours later.
"""

from __future__ import annotations

import math
import numbers
import types
import typing

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

MAX_SEED = 2**32 - 1
"""Largest seed: numpy's legacy ``np.random.seed`` (which transformer-lens calls) takes
0 <= seed < 2**32. Seeds derived by adding a small offset go to ``np.random.default_rng``
or torch generators, which accept them; :func:`wrap_seed` keeps a derived seed in range."""
MAX_STEPS = 10_000_000
"""Optimiser steps (and step intervals such as ``check_every``)."""
MAX_BATCH = 65_536
"""Sequences (or activation vectors) per step or per forward pass."""
MAX_PROMPTS = 4_194_304
"""Prompts in any one set: transfer set, evaluation set, probe set, pairs (2**22)."""
MAX_SAMPLES = 1_000_000_000
"""Activation vectors an SAE trains on."""
MAX_WIDTH = 65_536
"""Dictionary sizes (SAE features, crosscoder latents) and their L0 targets."""
MAX_THREADS = 1024
"""Torch threads."""


def wrap_seed(seed: int) -> int:
    """``seed`` reduced into [0, MAX_SEED] (for seeds derived as ``seed + offset``)."""
    return seed % (MAX_SEED + 1)


def check_seed(seed: int, where: str = "seed") -> int:
    """``seed`` unchanged, or ValueError naming the allowed range."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{where}: must be an integer in [0, {MAX_SEED}] (got {seed!r})")
    return seed


def is_number(annotation) -> bool:
    """True for an int or float field (``int``, ``float | None`` ...), False when the field
    also takes booleans or strings."""
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    args = typing.get_args(annotation)
    return any(a in (int, float) for a in args) and not any(a in (bool, str) for a in args)


class Guarded(BaseModel):
    """Base of every config: inf/nan rejected, and an int or float field takes only an int or
    float. pydantic's lax mode would read ``true`` as 1 and ``"150"`` as 150; a boolean in
    a number field is a mistake, and strings come only from the command line, which converts
    them first (:func:`distill.techniques.params.parse_set`)."""

    model_config = ConfigDict(allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value, info: ValidationInfo):
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and isinstance(value, (bool, str)) and is_number(field.annotation):
            kind = "a boolean" if isinstance(value, bool) else "a string"
            raise ValueError(f"expected a number, not {kind}")
        return value


def problems(exc: ValidationError) -> list[str]:
    """One line per error: ``parameter 'x': <what is allowed> (got ...)``."""
    out = []
    for err in exc.errors():
        field = ".".join(str(x) for x in err["loc"])
        what = f"parameter {field!r}: " if field else ""
        msg = err["msg"].removeprefix("Value error, ")
        got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
        out.append(f"{what}{msg}{got}")
    return out


def non_finite(data, path: str = "") -> list[str]:
    """Dotted paths of every inf/nan float inside nested dicts and lists (a spec as read)."""
    if isinstance(data, float):
        return [] if math.isfinite(data) else [path or "value"]
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in non_finite(v, f"{path}.{k}" if path else str(k))]
    if isinstance(data, (list, tuple)):
        return [p for i, v in enumerate(data) for p in non_finite(v, f"{path}[{i}]")]
    return []
