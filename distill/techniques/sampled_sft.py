"""sampled-sft: cross-entropy on the teacher's answers (sampled at a temperature, or greedy)
on ordinary traffic: hard labels only, no distribution."""

from __future__ import annotations

from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.params import HardTargetParams


@register
class SampledSFT(Technique):
    name = "sampled-sft"
    summary = "cross-entropy on the teacher's sampled (temperature) or greedy answers"
    Params = HardTargetParams

    def plan(self, ctx: Context, p: HardTargetParams) -> Plan:
        return draft(ctx, p).plan()
