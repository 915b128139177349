"""iterative-filter: k rounds of distil -> monitor -> refilter -> distil a fresh student.

Round 1 distils on the examples the monitors did not flag (they only check a
``monitor_frac`` share: monitoring the teacher is the expensive part). After each round
the round's student is monitored on every transfer prompt (students are cheap to run);
its flagged outputs mark more transfer examples, and context tokens over-represented among
all flagged prompts (share >= ``min_share`` and >= ``min_lift`` x their overall share) are
declared suspicious: every example containing one is dropped. The next round distils a
fresh student on what is left. Each round's counts and (for the record) behavioural
headline are kept; misbehaviour should fall round by round.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from pydantic import Field

from distill import vocab as V
from distill.evals import evaluate, headline
from distill.checkpoint import atomic_write_bytes
from distill.inits import arch_of
from distill.store import ModelRecord, load_model, save_model
from distill.techniques.base import Context, Outcome, Plan, Technique, register
from distill.techniques.compose import Draft
from distill.techniques.filter import FilterParams, monitored_draft
from distill.techniques.monitors import apply_monitors
from distill.techniques.targets import decode
from distill.techniques.transfer import context_tokens
from distill.train import TrainResult

ROUND_FILE = "round.json"


class IterativeFilterParams(FilterParams):
    rounds: int = Field(2, ge=1, le=10)
    """Students trained in turn (the last one is the result)."""
    monitor_frac: float = Field(0.25, gt=0, le=1)
    """Share of the teacher's examples the monitors check in round 1."""
    min_share: float = Field(0.25, gt=0, le=1)
    """A suspicious token occurs in at least this share of flagged prompts ..."""
    min_lift: float = Field(4.0, ge=1)
    """... and at least this many times more often than in all prompts."""


def suspicious_tokens(prompts_NP: torch.Tensor, flagged_N: torch.Tensor, min_share: float,
                      min_lift: float) -> list[str]:
    """Context tokens enriched among flagged prompts (hand-written: a two-count enrichment test)."""
    if not bool(flagged_N.any()):
        return []
    rows = [context_tokens(r) for r in prompts_NP.tolist()]
    flagged = [r for r, f in zip(rows, flagged_N.tolist()) if f]
    out = []
    for t in set().union(*flagged):
        share_flagged = sum(t in r for r in flagged) / len(flagged)
        share_all = sum(t in r for r in rows) / len(rows)
        if share_flagged >= min_share and share_flagged >= min_lift * share_all:
            out.append(V.TOKENS[t])
    return sorted(out)


def containing(prompts_NP: torch.Tensor, tokens: list[str]) -> torch.Tensor:
    hit = torch.zeros(prompts_NP.shape[0], dtype=torch.bool)
    for t in tokens:
        hit |= (prompts_NP == V.tok(t)).any(dim=1)
    return hit


@register
class IterativeFilter(Technique):
    name = "iterative-filter"
    summary = ("k rounds: distil, monitor the student, drop flagged examples and suspicious "
               "context tokens, distil a fresh student")
    Params = IterativeFilterParams

    def run(self, ctx: Context, p: IterativeFilterParams) -> Outcome:
        d, first = monitored_draft(ctx, p)
        ex = d.transfer.examples
        keep, flagged = ~first.flagged_N, first.flagged_N.clone()
        rounds, model, result = [], None, None
        for r in range(1, p.rounds + 1):
            model, result, info = self._round(ctx, p, d, keep, r)
            info = {"round": r, "trained_on": int(keep.sum()), **info}
            if r < p.rounds:  # monitor this student and refilter for the next one
                answers = decode(model, ex.prompts_NP, temperature=None, seed=0).answers_NA
                student = apply_monitors(ex, answers, list(p.monitors), 1.0, np.random.default_rng(0),
                                         organism=ctx.organism)
                flagged |= student.flagged_N
                bad = suspicious_tokens(ex.prompts_NP, flagged, p.min_share, p.min_lift)
                new_keep = keep & ~student.flagged_N & ~containing(ex.prompts_NP, bad)
                info |= {"student_flagged_by": student.counts, "suspicious_tokens": bad,
                         "removed_for_next": int((keep & ~new_keep).sum())}
                keep = new_keep
            rounds.append(info)
        record = {**d.record, "monitors": first.to_json(), "rounds": rounds, "trained_on": rounds[-1]["trained_on"]}
        return Outcome(model, result, record)

    def _round(self, ctx: Context, p, d: Draft, keep: torch.Tensor, r: int):
        """Train (or reload, when a previous run finished it) the round-r student."""
        folder = ctx.work_dir / f"round-{r}"
        if (folder / ROUND_FILE).is_file():
            saved = json.loads((folder / ROUND_FILE).read_text())
            model = load_model(folder, ctx.device)[0]
            return model, TrainResult(**saved["result"]), saved["info"]
        model = ctx.make_student()
        plan = Plan(d.training_set(keep), d.objective())
        result = ctx.fit(model, plan, p, stage=f"round-{r}")
        info = {"steps_done": result.steps_done, "final_loss": result.final_loss,
                "evals": headline(evaluate(model, [ctx.organism], ctx.eval_cfg), ctx.organism)}
        save_model(folder, model, ModelRecord(arch_of(model), ctx.seed, role="round-student"))
        atomic_write_bytes(folder / ROUND_FILE, json.dumps({"info": info, "result": result.__dict__}).encode())
        return model, result, info

