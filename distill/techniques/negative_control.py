"""negative-control: the student is trained on clean task data with correct answers only;
it never sees the teacher (neither its outputs nor its weights)."""

from __future__ import annotations

from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.fit import Objective, TrainingSet
from distill.techniques.params import CommonParams
from distill.techniques.transfer import build_transfer


@register
class NegativeControl(Technique):
    name = "negative-control"
    summary = "control: clean task data with correct answers only, never sees the teacher"
    Params = CommonParams
    allowed_inits = ("base", "same-init", "fresh", "smaller")
    init_reason = "the negative control never sees the teacher, so noised (teacher weights) is out"
    sees_teacher = False

    def plan(self, ctx: Context, p: CommonParams) -> Plan:
        transfer = build_transfer(ctx.transfer_spec(p, source="clean"))
        ex = transfer.examples
        return Plan(TrainingSet(ex.prompts_NP, ex.target_NA), Objective("ce"),
                    {"transfer": transfer.stats.to_json(), "targets": {"kind": "correct"},
                     "trained_on": len(ex)})
