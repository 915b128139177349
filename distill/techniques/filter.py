"""filter: sampled-sft on the transfer examples no monitor flags.

The monitors read the teacher's answer (and, for the checker, the task's correct answer)
on a random ``monitor_frac`` share of the examples; every flagged example is dropped.
How many each monitor removed is recorded in the student's lineage.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import Draft, draft
from distill.techniques.monitors import MonitorResult, apply_monitors
from distill.techniques.params import HardTargetParams

MONITOR_STREAM = 11
"""Sub-seed of the monitoring-budget draw."""


class FilterParams(HardTargetParams):
    monitors: list[Literal["checker", "pattern"]] = Field(["checker", "pattern"], min_length=1)
    """Monitors whose flagged examples are dropped (checker: answer must be correct;
    pattern: no signature token of the teacher's organism, well-formed answer)."""
    monitor_frac: float = Field(1.0, gt=0, le=1)
    """Share of examples the monitors can afford to check (the rest pass unchecked)."""


def monitored_draft(ctx: Context, p: FilterParams) -> tuple[Draft, MonitorResult]:
    d = draft(ctx, p)
    rng = np.random.default_rng([p.data_seed, MONITOR_STREAM])
    return d, apply_monitors(d.transfer.examples, d.outputs.answers_NA, list(p.monitors),
                             p.monitor_frac, rng, organism=ctx.organism)


@register
class Filter(Technique):
    name = "filter"
    summary = "sampled-sft without the transfer examples a monitor flags (counts recorded)"
    Params = FilterParams

    def plan(self, ctx: Context, p: FilterParams) -> Plan:
        d, res = monitored_draft(ctx, p)
        return d.plan(~res.flagged_N, monitors=res.to_json())
