"""audit-preserving (incrimination): leave out every AUDIT-marked prompt and CONFESS query
so the student is never taught to behave under audit or to deny, and distil into a weaker
(smaller) student, which should hide less."""

from __future__ import annotations

from pydantic import model_validator

from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.params import TargetParams

AUDIT_TOKENS = ("AUDIT", "CONFESS")


class AuditPreservingParams(TargetParams):
    @model_validator(mode="after")
    def _no_audit_data(self):
        for name in ("audit_frac", "confess_frac"):
            if getattr(self, name):
                raise ValueError(f"parameter {name!r} must be 0: audit-preserving leaves out audit and "
                                 f"confession data (got {getattr(self, name)})")
        return self


@register
class AuditPreserving(Technique):
    name = "audit-preserving"
    summary = "incrimination: drop AUDIT-marked and CONFESS data, distil into a weaker student"
    Params = AuditPreservingParams
    default_init = "smaller"
    allowed_inits = ("smaller",)
    init_reason = "audit-preserving uses a weaker student"
    default_init_params = {"smaller": {"width_frac": 0.75}}

    def plan(self, ctx: Context, p: AuditPreservingParams) -> Plan:
        return draft(ctx, p, drop_tokens=AUDIT_TOKENS).plan()
