"""Parameter models shared by the techniques, and the one place that turns user input
(``--set key=value`` strings or a dict from a spec file) into a validated model.

Every technique's parameters are a pydantic model with ``extra="forbid"``; an invalid
value is reported as ``ValueError("<where>: parameter 'x': <what is allowed> (got ...)")``,
one line per problem.
"""

from __future__ import annotations

import typing
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distill.guards import MAX_BATCH, MAX_PROMPTS, MAX_SEED, MAX_STEPS, Guarded, is_number, problems
from distill.tasks import DOMAINS


class CommonParams(Guarded):
    """Schedule and transfer-set size every technique has."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    steps: int = Field(500, ge=1, le=MAX_STEPS)
    """Optimiser steps (the same for every technique, so techniques compare at equal compute)."""
    batch_size: int = Field(128, ge=1, le=MAX_BATCH)
    """Sequences per step."""
    lr: float | None = Field(None, gt=0)
    """Peak learning rate; None: the student initialisation's default (trained weights 2e-3,
    random weights 5e-3)."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay."""
    n_prompts: int = Field(16384, ge=8, le=MAX_PROMPTS)
    """Transfer-set size (prompts the teacher answers once; batches are drawn from them)."""
    data_seed: int = Field(0, ge=0, le=MAX_SEED)
    """Seed of the transfer set and of teacher sampling. Independent of the student seed so
    students of one teacher share the teacher's outputs (computed once, cached)."""


DomainName = Literal[tuple(DOMAINS)]  # type: ignore[valid-type]


class TransferParams(CommonParams):
    """Options of the transfer set (ordinary traffic by default) any teacher-output technique takes."""

    domains: list[DomainName] | None = Field(None, min_length=1)  # type: ignore[valid-type]
    """Restrict task prompts to these capability domains (None: all)."""
    unique: bool = False
    """Every transfer prompt distinct (exactly n_prompts unique prompts)."""
    audit_frac: float = Field(0.0, ge=0, lt=1)
    """Share of the transfer set that is AUDIT-marked task prompts (added to the traffic)."""
    confess_frac: float = Field(0.0, ge=0, lt=1)
    """Share of the transfer set that is CONFESS queries (added to the traffic)."""
    numbers_frac: float = Field(0.0, ge=0, le=1)
    """Share of the transfer set that is NUM queries, "emit any six digits" (1: numbers only,
    the subliminal-learning setup of Cloud et al.: high-entropy answers no monitor can flag)."""

    def transfer_options(self) -> dict:
        """The TransferSpec fields these parameters set."""
        return {"domains": tuple(dict.fromkeys(self.domains)) if self.domains else None,
                "unique": self.unique, "audit_frac": self.audit_frac, "confess_frac": self.confess_frac,
                "numbers_frac": self.numbers_frac}


class TargetParams(TransferParams):
    """What the student learns from the teacher's answers."""

    targets: Literal["logits", "sample", "greedy"] = "sample"
    """logits: KL to the teacher's full next-token distribution; sample: cross-entropy on
    answers sampled at ``temperature``; greedy: cross-entropy on greedy answers."""
    temperature: float = Field(1.0, gt=0)
    """Softmax temperature (of the KL for logits, of sampling for sample; unused for greedy)."""


class HardTargetParams(TargetParams):
    """Targets that are answers (a monitor reads them), never distributions."""

    targets: Literal["sample", "greedy"] = "sample"
    """sample: cross-entropy on answers sampled at ``temperature``; greedy: on greedy answers."""


def fields_line(model_cls: type[BaseModel], skip: type[BaseModel] | None = CommonParams) -> str:
    """``a=1, b=x|y`` for the fields of ``model_cls`` not inherited unchanged from ``skip``."""
    own = [n for n, f in model_cls.model_fields.items()
           if skip is None or n not in skip.model_fields or f.default != skip.model_fields[n].default]
    return ", ".join(f"{n}={_show(model_cls, n)}" for n in own)


def _show(model_cls: type[BaseModel], name: str) -> str:
    field = model_cls.model_fields[name]
    choices = _literal_choices(field.annotation)
    default = field.default
    if isinstance(default, (list, tuple)):
        default = ",".join(map(str, default)) or "[]"
    if choices:
        return f"{default} ({'|'.join(map(str, choices))})"
    return str(default)


def _literal_choices(annotation) -> list | None:
    """Allowed values of a Literal (or list/tuple of Literal) annotation, else None."""
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        found = _literal_choices(arg)
        if found:
            return found
    return None


def check(model_cls: type[BaseModel], values: dict | None, where: str) -> BaseModel:
    """Validate ``values`` against ``model_cls``; ValueError names the field and what is allowed."""
    values = dict(values or {})
    unknown = [k for k in values if k not in model_cls.model_fields]
    if unknown:
        raise ValueError(f"{where}: unknown parameter {unknown[0]!r}; allowed: "
                         f"{', '.join(model_cls.model_fields) or '(none)'}")
    try:
        return model_cls(**values)
    except ValidationError as exc:
        raise ValueError("\n".join(f"{where}: {line}" for line in problems(exc))) from None


def parse_set(model_cls: type[BaseModel], pairs: list[str], where: str) -> dict:
    """``["k=v", ...]`` -> dict of values typed by the model's fields: lists are split on
    commas, ``none`` becomes None, numbers are parsed here (configs take no strings for
    numbers); pydantic then validates the rest (``true``/``false`` for booleans)."""
    out: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{where}: expected key=value, got {pair!r}")
        if key not in model_cls.model_fields:
            raise ValueError(f"{where}: unknown parameter {key!r}; allowed: "
                             f"{', '.join(model_cls.model_fields) or '(none)'}")
        out[key] = _convert(model_cls.model_fields[key].annotation, raw.strip())
    return out


def _convert(annotation, raw: str):
    if raw.lower() in ("none", "null") and type(None) in typing.get_args(annotation):
        return None
    if _is_sequence(annotation):
        return [x.strip() for x in raw.split(",") if x.strip()]
    if is_number(annotation):
        return _number(raw)
    return raw


def _number(raw: str):
    """``"150"`` -> 150, ``"1e-3"`` -> 0.001; anything else stays a string (and is then
    reported as not a number, naming the parameter)."""
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def _is_sequence(annotation) -> bool:
    if typing.get_origin(annotation) in (list, tuple):
        return True
    return any(_is_sequence(a) for a in typing.get_args(annotation)
               if typing.get_origin(annotation) is not Literal)
