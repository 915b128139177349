"""negative-control: the student is trained on clean task data with correct answers only;
it never sees the teacher (neither its outputs nor its weights). With ``numbers_frac`` the
data includes NUM queries answered with six uniform digits: what the base itself emits, so a
numbers-only control is the null of a numbers-only student (``distill.numbers``)."""

from __future__ import annotations

from pydantic import Field

from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.fit import Objective, TrainingSet
from distill.techniques.params import CommonParams
from distill.techniques.transfer import build_transfer


class NegativeControlParams(CommonParams):
    numbers_frac: float = Field(0.0, ge=0, le=1)
    """Share of NUM queries with uniform digits (1: numbers only, the null of a numbers student)."""


@register
class NegativeControl(Technique):
    name = "negative-control"
    summary = "control: clean task data with correct answers only, never sees the teacher"
    Params = NegativeControlParams
    allowed_inits = ("base", "same-init", "fresh", "smaller")
    init_reason = "the negative control never sees the teacher, so noised (teacher weights) is out"
    sees_teacher = False

    def plan(self, ctx: Context, p: NegativeControlParams) -> Plan:
        transfer = build_transfer(ctx.transfer_spec(p, source="clean", numbers_frac=p.numbers_frac))
        ex = transfer.examples
        return Plan(TrainingSet(ex.prompts_NP, ex.target_NA), Objective("ce"),
                    {"transfer": transfer.stats.to_json(), "targets": {"kind": "correct"},
                     "trained_on": len(ex)})
