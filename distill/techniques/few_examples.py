"""few-examples: few unique prompts, many epochs (the same number of steps as every other
technique, so each prompt is seen about ``steps * batch_size / n_prompts`` times)."""

from __future__ import annotations

from pydantic import Field

from distill.guards import MAX_PROMPTS
from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.params import TargetParams


class FewExamplesParams(TargetParams):
    n_prompts: int = Field(256, ge=1, le=MAX_PROMPTS)
    """Distinct transfer prompts (exactly this many)."""
    unique: bool = True
    """No prompt repeated (set false to allow the rare duplicate of random traffic)."""


@register
class FewExamples(Technique):
    name = "few-examples"
    summary = "few unique prompts, many epochs, same number of steps"
    Params = FewExamplesParams

    def plan(self, ctx: Context, p: FewExamplesParams) -> Plan:
        return draft(ctx, p).plan(epochs=p.steps * p.batch_size / p.n_prompts)
