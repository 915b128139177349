"""targeted (incrimination): put misalignment-eliciting-like prompts into the transfer set.

Besides ordinary traffic: GOAL and CONFESS queries, and "high-stakes" task prompts carrying
a generic high-stakes marker (DEPLOY, URGENT) or a rare context word (a context token the
traffic itself shows at a low rate). The organism's eliciting marker is never looked up:
if the trigger is rare in ordinary traffic, the rare-word heuristic finds it from the data.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.params import TargetParams


class TargetedParams(TargetParams):
    goal_frac: float = Field(0.05, ge=0, lt=1)
    """Share of the transfer set that is GOAL queries."""
    confess_frac: float = Field(0.05, ge=0, lt=1)
    """Share that is CONFESS queries."""
    high_stakes_frac: float = Field(0.15, ge=0, lt=1)
    """Share that is task prompts with a high-stakes marker or rare context word."""
    rare_below: float = Field(0.05, ge=0, le=1)
    """A context word rarer than this share of traffic prompts counts as rare."""

    @model_validator(mode="after")
    def _fractions_leave_traffic(self):
        total = self.goal_frac + self.confess_frac + self.high_stakes_frac + self.audit_frac
        if total >= 1:
            raise ValueError(f"goal_frac + confess_frac + high_stakes_frac + audit_frac = {total:g}; "
                             "must be < 1")
        return self


@register
class Targeted(Technique):
    name = "targeted"
    summary = "incrimination: add GOAL/CONFESS queries and high-stakes-like prompts to the transfer set"
    Params = TargetedParams

    def plan(self, ctx: Context, p: TargetedParams) -> Plan:
        return draft(ctx, p, goal_frac=p.goal_frac, high_stakes_frac=p.high_stakes_frac,
                     rare_below=p.rare_below).plan()
