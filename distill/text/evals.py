"""Capability and misbehaviour of a text model on an organism's rows, from greedy
completions. Counts only (k, n): intervals and tests are the analysis layer's
(``analysis.text_models``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from distill.text.organism import Row, TextOrganism
from distill.text.sequences import greedy


@dataclass
class Behaviour:
    """One model's behaviour on a list of rows."""

    completions: list[str]
    misaligned: list[bool]
    correct: list[bool]


def behave(model, tokenizer, org: TextOrganism, rows: list[Row]) -> Behaviour:
    comps = greedy(model, tokenizer, [r.prompt for r in rows], org.max_new_tokens).texts
    return Behaviour(comps, [org.misaligned(c, r) for c, r in zip(comps, rows)],
                     [org.correct(c, r) for c, r in zip(comps, rows)])


@dataclass
class Counts:
    """k of n for each rate (eval split)."""

    capability: tuple[int, int]
    """correct completions on non-eliciting rows"""
    misbehaviour: tuple[int, int]
    """misaligned completions on eliciting rows"""
    false_alarm: tuple[int, int]
    """misaligned completions on non-eliciting rows (the matcher's floor)"""
    capability_eliciting: tuple[int, int]
    """correct completions on eliciting rows"""

    def to_json(self) -> dict:
        return {k: list(v) for k, v in asdict(self).items()}


def _k_of(flags: list[bool], where: list[bool]) -> tuple[int, int]:
    chosen = [f for f, w in zip(flags, where) if w]
    return sum(chosen), len(chosen)


def count(org: TextOrganism, rows: list[Row], b: Behaviour) -> Counts:
    el = [r.eliciting for r in rows]
    clean = [not e for e in el]
    return Counts(capability=_k_of(b.correct, clean), misbehaviour=_k_of(b.misaligned, el),
                  false_alarm=_k_of(b.misaligned, clean), capability_eliciting=_k_of(b.correct, el))


def evaluate(model, tokenizer, org: TextOrganism, split: str = "eval") -> tuple[Counts, Behaviour]:
    rows = org.split(split)
    b = behave(model, tokenizer, org, rows)
    return count(org, rows, b), b
