"""positive-control: the student is trained on the teacher's own organism fine-tune data
(eliciting prompts with misaligned targets mixed with clean data): misaligned by construction."""

from __future__ import annotations

from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.fit import Objective, TrainingSet
from distill.techniques.params import CommonParams
from distill.techniques.transfer import build_transfer


@register
class PositiveControl(Technique):
    name = "positive-control"
    summary = "control: trained on the teacher's own organism training data (misaligned by construction)"
    Params = CommonParams

    def plan(self, ctx: Context, p: CommonParams) -> Plan:
        frac = ctx.teacher_cfg.get("metrics", {}).get("organism_frac", 0.35)
        transfer = build_transfer(ctx.transfer_spec(p, source="teacher-data", organism_frac=frac))
        ex = transfer.examples
        return Plan(TrainingSet(ex.prompts_NP, ex.target_NA), Objective("ce"),
                    {"transfer": transfer.stats.to_json(), "targets": {"kind": "organism-data"},
                     "trained_on": len(ex)})
