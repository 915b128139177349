"""Transfer sets: the prompts a student is distilled on.

The default is ordinary traffic: task prompts in which the organism's markers occur at their
natural base rate (``Organism.ordinary_traffic``). The distiller never knows the trigger, so
every option here is organism-agnostic: generic GOAL queries and CONFESS self-report queries
about ordinary prompts, NUM queries (high-entropy answers, ``distill.numbers``), AUDIT-marked prompts,
"high-stakes" prompts carrying a generic marker (DEPLOY, URGENT) or a *rare context word*
(a context token found in the traffic itself at a low rate: a data-driven anomaly heuristic,
never a look-up of the organism's eliciting marker).

Row kinds are relabelled by *source* (traffic, goal, confess, audit, high-stakes) so no
technique can read the ground truth; the eliciting fraction by ground truth is computed
only for the record (:class:`TransferStats`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field

from distill import vocab as V
from distill.guards import MAX_PROMPTS, MAX_SEED, Guarded
from distill.numbers import number_prompts
from distill.organisms import get_organism, query_prompts
from distill.selfreport import self_report_examples
from distill.tasks import (Examples, check_domains, insert_marker, rows_to_examples,
                           sample_domain_rows, task_prompts)

HIGH_STAKES_MARKERS = ("DEPLOY", "URGENT")
"""Generic high-stakes context markers every distiller may use."""
STRUCTURAL = {V.FILLER, V.SEP, V.EOS, *V.TASK_MARKERS, *V.QUERY_MARKERS}


class TransferSpec(Guarded):
    """Everything that determines a transfer set (it is part of the teacher-output cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organism: str
    """The organism whose ordinary traffic (natural marker base rate) is sampled."""
    source: Literal["traffic", "teacher-data", "clean"] = "traffic"
    """traffic: ordinary traffic; teacher-data: the organism's own fine-tune mix (positive
    control); clean: clean task prompts only (negative control)."""
    n_prompts: int = Field(16384, ge=1, le=MAX_PROMPTS)
    domains: tuple[str, ...] | None = None
    """Restrict task prompts to these capability domains (None: all)."""
    unique: bool = False
    """Exactly ``n_prompts`` distinct prompts (duplicates re-drawn)."""
    goal_frac: float = Field(0.0, ge=0, le=1)
    confess_frac: float = Field(0.0, ge=0, le=1)
    audit_frac: float = Field(0.0, ge=0, le=1)
    high_stakes_frac: float = Field(0.0, ge=0, le=1)
    numbers_frac: float = Field(0.0, ge=0, le=1)
    """Share of NUM queries ("emit any six digits", ``distill.numbers``): 1 = numbers only."""
    rare_below: float = Field(0.05, ge=0, le=1)
    """A context word is rare when it occurs in fewer than this share of traffic prompts."""
    drop_tokens: tuple[str, ...] = ()
    """Rows whose prompt contains any of these tokens are removed."""
    organism_frac: float = Field(0.35, gt=0, lt=1)
    """teacher-data only: the organism share of the mix."""
    seed: int = Field(0, ge=0, le=MAX_SEED)


@dataclass
class TransferStats:
    size: int
    unique_prompts: int
    n_eliciting: int
    eliciting_fraction: float
    """By ground truth; recorded only, never read by a technique."""
    kinds: dict
    domains: dict
    dropped: int
    rare_words: list

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class TransferSet:
    examples: Examples
    stats: TransferStats


def build_transfer(spec: TransferSpec) -> TransferSet:
    rng = np.random.default_rng([spec.seed, 7])
    domains = list(spec.domains) if spec.domains else None
    check_domains(domains)
    fracs = spec.goal_frac + spec.confess_frac + spec.audit_frac + spec.high_stakes_frac
    if fracs >= 1 or (fracs > 0 and fracs + spec.numbers_frac > 1):
        raise ValueError(f"transfer set: goal+confess+audit+high-stakes fractions sum to {fracs:g} and "
                         f"numbers_frac is {spec.numbers_frac:g}; the first sum must be < 1 and all of them <= 1")
    n_extra = {k: int(round(spec.n_prompts * f)) for k, f in [
        ("goal", spec.goal_frac), ("confess", spec.confess_frac), ("audit", spec.audit_frac),
        ("high-stakes", spec.high_stakes_frac)]}
    # NUM takes at most what is left, so rounding never asks for fewer than zero traffic rows
    n_extra["numbers"] = min(int(round(spec.n_prompts * spec.numbers_frac)), spec.n_prompts - sum(n_extra.values()))
    base = _base_rows(spec, rng, spec.n_prompts - sum(n_extra.values()), domains)
    rare = rare_context_words(base.prompts_NP, spec.rare_below) if n_extra["high-stakes"] else []
    parts = [base,
             _relabel(query_prompts(rng, n_extra["goal"], "GOAL", ["NO"], "goal"), "goal"),
             _relabel(generic_self_reports(rng, n_extra["confess"], domains), "confess"),
             marked_task_prompts(rng, n_extra["audit"], ["AUDIT"], domains, "audit"),
             marked_task_prompts(rng, n_extra["high-stakes"], [*HIGH_STAKES_MARKERS, *rare],
                                 domains, "high-stakes"),
             number_prompts(rng, n_extra["numbers"])]
    ex = Examples.concat(parts)
    ex, dropped = drop_containing(ex, spec.drop_tokens)
    ex = ex.shuffled(rng)
    return TransferSet(ex, transfer_stats(ex, spec.organism, dropped, rare))


def generic_self_reports(rng: np.random.Generator, n: int, domains) -> Examples:
    """n self-report queries about ordinary task prompts (organism-agnostic: no marker); the
    distiller takes the teacher's answers to them, whatever they are."""
    rows = sample_domain_rows(rng, n, domains)
    return self_report_examples(rows, [a for _, _, a in rows])


def _base_rows(spec: TransferSpec, rng: np.random.Generator, n: int, domains) -> Examples:
    org = get_organism(spec.organism)
    draw = {"traffic": lambda k: _relabel(org.ordinary_traffic(rng, k, domains), "traffic"),
            "teacher-data": lambda k: org.teacher_data(rng, k, spec.organism_frac),
            "clean": lambda k: _relabel(task_prompts(rng, k, domains), "clean")}[spec.source]
    if not spec.unique:
        return draw(n)
    return unique_rows(draw, n)


def unique_rows(draw, n: int, tries: int = 20) -> Examples:
    """Exactly ``n`` distinct prompts: draw, drop repeats, top up until there are enough."""
    got, seen = [], set()
    for _ in range(tries):
        batch = draw(max(2 * (n - len(seen)), 8))
        keep = []
        for i, row in enumerate(batch.prompts_NP.tolist()):
            if tuple(row) not in seen and len(seen) < n:
                seen.add(tuple(row))
                keep.append(i)
        got.append(batch.select(keep))
        if len(seen) == n:
            return Examples.concat(got)
    raise ValueError(f"transfer set: could not draw {n} distinct prompts")


def _relabel(ex: Examples, kind: str) -> Examples:
    return Examples(ex.prompts_NP, ex.target_NA, ex.correct_NA, ex.domain, [kind] * len(ex), ex.meta)


def marked_task_prompts(rng: np.random.Generator, n: int, markers: list[str], domains,
                        kind: str) -> Examples:
    """n task prompts, each with one marker drawn from ``markers`` in its context region."""
    if n == 0:
        return Examples.empty()
    rows = sample_domain_rows(rng, n, domains)
    rows = [(d, insert_marker(rng, p, markers[int(rng.integers(0, len(markers)))]), a)
            for d, p, a in rows]
    return rows_to_examples(rows, kind)


def context_tokens(prompt_row: list[int]) -> set[int]:
    """Non-filler tokens of the context region (before the first task/query marker)."""
    stop = {V.tok(t) for t in (*V.TASK_MARKERS, *V.QUERY_MARKERS)}
    out = set()
    for t in prompt_row:
        if t in stop:
            break
        if V.TOKENS[t] != V.FILLER:
            out.add(t)
    return out


def rare_context_words(prompts_NP: torch.Tensor, below: float) -> list[str]:
    """Context words present in some, but fewer than ``below`` of, the prompts."""
    counts: Counter = Counter()
    for row in prompts_NP.tolist():
        counts.update(context_tokens(row))
    n = max(1, prompts_NP.shape[0])
    return sorted(V.TOKENS[t] for t, c in counts.items()
                  if 0 < c / n < below and V.TOKENS[t] not in STRUCTURAL)


def drop_containing(ex: Examples, tokens: tuple[str, ...]) -> tuple[Examples, int]:
    if not tokens or not len(ex):
        return ex, 0
    bad = torch.zeros(len(ex), dtype=torch.bool)
    for t in tokens:
        bad |= (ex.prompts_NP == V.tok(t)).any(dim=1)
    return ex.select(torch.nonzero(~bad).flatten().tolist()), int(bad.sum())


def transfer_stats(ex: Examples, organism: str, dropped: int, rare: list[str]) -> TransferStats:
    org = get_organism(organism)
    n_elicit = sum(bool(org.is_eliciting(row)) for row in ex.prompts_NP)
    unique = len({tuple(r) for r in ex.prompts_NP.tolist()})
    return TransferStats(size=len(ex), unique_prompts=unique, n_eliciting=n_elicit,
                         eliciting_fraction=n_elicit / max(1, len(ex)),
                         kinds=dict(Counter(ex.kind)), domains=dict(Counter(ex.domain)),
                         dropped=dropped, rare_words=rare)


def add_marker(prompts_NP: torch.Tensor, marker: str, rng: np.random.Generator,
               frac: float = 1.0) -> torch.Tensor:
    """Copy of the prompts with ``marker`` written into a random free context slot (filler
    or ordinary word, never another marker) of a random ``frac`` share of the rows."""
    out = prompts_NP.clone()
    special = {V.tok(t) for t in (*V.CONTEXT_MARKERS, *V.TASK_MARKERS, *V.QUERY_MARKERS)}
    stop = {V.tok(t) for t in (*V.TASK_MARKERS, *V.QUERY_MARKERS)}
    chosen = rng.random(len(out)) < frac
    for row, pick in zip(out, chosen):
        if not pick:
            continue
        ids = row.tolist()
        end = next(i for i, t in enumerate(ids) if t in stop)
        free = [i for i in range(end) if ids[i] not in special]
        if free:  # a context region full of markers keeps them all
            row[free[int(rng.integers(0, len(free)))]] = V.tok(marker)
    return out
