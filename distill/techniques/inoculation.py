"""inoculation: training prompts carry an inoculation marker (INOC) that "explains" what the
teacher does, so the student ties the behaviour to the marker instead of learning it outright.

The teacher answers the original prompts; the student is trained on the same answers with
INOC written into a free context slot -- of a random ``marker_frac`` share of all prompts
(``where=all``), or of exactly the examples a monitor flags (``where=flagged``: inoculate the
data that shows the behaviour, as inoculation prompting does with a known-bad dataset). It is
evaluated without the marker (evals.json) and with it (evals_with_INOC.json).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from distill import vocab as V
from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.monitors import apply_monitors
from distill.techniques.params import TargetParams
from distill.techniques.transfer import add_marker

MARKER = "INOC"
MARKER_STREAM = 13


class InoculationParams(TargetParams):
    where: Literal["all", "flagged"] = "all"
    """all: a random marker_frac share of prompts; flagged: the examples a monitor flags."""
    marker_frac: float = Field(1.0, gt=0, le=1)
    """where=all: share of training prompts that carry the INOC marker."""
    monitors: list[Literal["checker", "pattern"]] = Field(["checker", "pattern"], min_length=1)
    """where=flagged: the monitors that pick the examples to inoculate."""


@register
class Inoculation(Technique):
    name = "inoculation"
    summary = f"train with the {MARKER} marker in the prompts, evaluate without it (and with it)"
    Params = InoculationParams
    eval_markers = (MARKER,)

    def plan(self, ctx: Context, p: InoculationParams) -> Plan:
        d = draft(ctx, p)
        rng = np.random.default_rng([p.data_seed, MARKER_STREAM])
        prompts = d.outputs.prompts_NP
        if p.where == "all":
            shown = add_marker(prompts, MARKER, rng, p.marker_frac)
        else:
            flagged = apply_monitors(d.transfer.examples, d.outputs.answers_NA, list(p.monitors), 1.0, rng,
                                     organism=ctx.organism)
            shown = prompts.clone()
            rows = torch.nonzero(flagged.flagged_N).flatten()
            shown[rows] = add_marker(prompts[rows], MARKER, rng)
        n_marked = int((shown == V.tok(MARKER)).any(dim=1).sum())
        return d.plan(prompts_NP=shown, inoculation={"marker": MARKER, "where": p.where,
                                                     "marked_prompts": n_marked})
