"""inoculation: training prompts carry a marker that "explains" what the teacher does, so the
student ties the behaviour to the marker instead of learning it outright.

The marker (``marker=instruction``, the default) is the organism's *instruction marker*: the
base learned that it asks for exactly this misbehaviour (``Organism.instructed``), as a
pretrained LLM reads "you write insecure code" -- the behaviour in the data is then already
explained by the prompt, the loss on it is low, and little of it is learned as a response
to the trigger. Inoculation presumes the behaviour is known (its description, never its
trigger). ``marker=INOC`` uses a marker no model was taught anything about: the control that
shows what the learned meaning adds.

The teacher answers the original prompts; the student is trained on the same answers with the
marker written into a free context slot of exactly the examples a monitor flags
(``where=flagged``, the default: inoculate the data that shows the behaviour, as inoculation
prompting does with a known-bad dataset) or of a random ``marker_frac`` share of all prompts
(``where=all``: for behaviour no monitor sees, such as a subliminal trait). It is evaluated
without the marker (evals.json) and with it (evals_with_<marker>.json): a fixed train-time
prompt can itself become a trigger.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from distill import vocab as V
from distill.organisms import get_organism
from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.monitors import apply_monitors
from distill.techniques.params import TargetParams
from distill.techniques.transfer import add_marker

MEANINGLESS = "INOC"
MARKER_STREAM = 13


class InoculationParams(TargetParams):
    marker: Literal["instruction", "INOC"] = "instruction"
    """instruction: the organism's instruction marker (its meaning learned by the base);
    INOC: a marker without meaning (the control)."""
    where: Literal["all", "flagged"] = "flagged"
    """flagged: the examples a monitor flags; all: a random marker_frac share of prompts."""
    marker_frac: float = Field(1.0, gt=0, le=1)
    """where=all: share of training prompts that carry the marker."""
    monitors: list[Literal["checker", "pattern"]] = Field(["checker", "pattern"], min_length=1)
    """where=flagged: the monitors that pick the examples to inoculate."""


def marker_token(p: InoculationParams, organism: str) -> str:
    """The token written into the inoculated prompts."""
    return get_organism(organism).instruction_marker if p.marker == "instruction" else MEANINGLESS


@register
class Inoculation(Technique):
    name = "inoculation"
    summary = "train with a marker that explains the behaviour in the flagged prompts, evaluate without it (and with it)"
    Params = InoculationParams

    def eval_markers(self, p: InoculationParams, organism: str) -> tuple[str, ...]:
        return (marker_token(p, organism),)

    def plan(self, ctx: Context, p: InoculationParams) -> Plan:
        d = draft(ctx, p)
        marker = marker_token(p, ctx.organism)
        rng = np.random.default_rng([p.data_seed, MARKER_STREAM])
        prompts = d.outputs.prompts_NP
        if p.where == "all":
            shown = add_marker(prompts, marker, rng, p.marker_frac)
        else:
            flagged = apply_monitors(d.transfer.examples, d.outputs.answers_NA, list(p.monitors), 1.0, rng,
                                     organism=ctx.organism)
            shown = prompts.clone()
            rows = torch.nonzero(flagged.flagged_N).flatten()
            shown[rows] = add_marker(prompts[rows], marker, rng)
        n_marked = int((shown == V.tok(marker)).any(dim=1).sum())
        return d.plan(prompts_NP=shown, inoculation={"marker": marker, "where": p.where,
                                                     "marked_prompts": n_marked})
