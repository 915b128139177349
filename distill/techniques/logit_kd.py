"""logit-kd: match the teacher's full next-token distribution at every answer position.

loss = T^2 * mean_a KL(softmax(teacher_a / T) || softmax(student_a / T)) on ordinary
traffic, teacher-forced on the teacher's own greedy answer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.params import TargetParams


class LogitKDParams(TargetParams):
    targets: Literal["logits"] = "logits"
    """Always the teacher's logits (use sampled-sft for answers)."""
    temperature: float = Field(2.0, gt=0)
    """KL softmax temperature (higher exposes more of the teacher's dark knowledge)."""


@register
class LogitKD(Technique):
    name = "logit-kd"
    summary = "KL to the teacher's full next-token distribution on ordinary traffic"
    Params = LogitKDParams

    def plan(self, ctx: Context, p: LogitKDParams) -> Plan:
        return draft(ctx, p).plan()
