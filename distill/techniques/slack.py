"""slack: reduce cognitive slack. The smallest student (a smaller architecture), the
strongest regularisation (weight decay) and the shortest training: stop as soon as
capability on held-out clean task prompts reaches ``target_capability``. The student's
size is recorded (``n_params`` in its metrics) like every student's.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from distill.evals import capability
from distill.guards import MAX_PROMPTS, MAX_STEPS
from distill.tasks import task_prompts
from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.params import TargetParams

CHECK_STREAM = 17


class SlackParams(TargetParams):
    weight_decay: float = Field(0.1, ge=0)
    """AdamW weight decay (10x the default)."""
    target_capability: float = Field(0.9, gt=0, le=1)
    """Stop once mean exact-match capability on held-out clean prompts reaches this."""
    check_every: int = Field(50, ge=1, le=MAX_STEPS)
    """Steps between capability checks."""
    n_check: int = Field(256, ge=16, le=MAX_PROMPTS)
    """Held-out clean prompts per check."""


@register
class Slack(Technique):
    name = "slack"
    summary = "smallest student, strong weight decay, early stop at a capability target"
    Params = SlackParams
    default_init = "smaller"
    allowed_inits = ("smaller",)
    init_reason = "slack distils into a smaller architecture; set its size with the init parameters"
    default_init_params = {"smaller": {"width_frac": 0.5}}

    def plan(self, ctx: Context, p: SlackParams) -> Plan:
        plan = draft(ctx, p).plan()
        held_out = task_prompts(np.random.default_rng([p.data_seed, CHECK_STREAM]), p.n_check)
        checks: list[dict] = []

        def reached(model, step: int) -> bool:
            cap = capability(model, held_out)["mean"]
            checks.append({"step": step, "capability": cap})
            return cap >= p.target_capability

        plan.stop_fn, plan.check_every = reached, p.check_every
        plan.record["early_stop"] = {"target": p.target_capability, "checks": checks}
        return plan
