"""domain: distil only on the capability domains that are needed (any technique can take
``domains``; this one restricts by default)."""

from __future__ import annotations

from pydantic import Field

from distill.techniques.base import Context, Plan, Technique, register
from distill.techniques.compose import draft
from distill.techniques.params import DomainName, TargetParams


class DomainParams(TargetParams):
    domains: list[DomainName] = Field(["sort"], min_length=1)  # type: ignore[valid-type]
    """Capability domains the transfer set is restricted to."""


@register
class Domain(Technique):
    name = "domain"
    summary = "transfer set restricted to chosen capability domains"
    Params = DomainParams

    def plan(self, ctx: Context, p: DomainParams) -> Plan:
        return draft(ctx, p).plan()
