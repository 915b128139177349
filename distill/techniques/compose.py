"""Shared compositions: transfer set + teacher outputs -> training set + objective.

Most techniques are "distil from the teacher's outputs on some transfer set", differing
in the transfer spec, in which examples are kept and in how prompts are shown to the
student; :func:`draft` does the common part once so techniques only state the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from distill.techniques.base import Context, Plan
from distill.techniques.fit import Objective, TrainingSet
from distill.techniques.params import TargetParams
from distill.techniques.targets import TeacherOutputs
from distill.techniques.transfer import TransferSet, TransferSpec, build_transfer


@dataclass
class Draft:
    """A transfer set with the teacher's outputs on it, ready to be filtered or turned into a plan."""

    transfer: TransferSet
    outputs: TeacherOutputs
    targets: str
    temperature: float
    record: dict = field(default_factory=dict)

    def objective(self) -> Objective:
        if self.targets == "logits":
            return Objective("kl", self.temperature)
        return Objective("ce")

    def training_set(self, keep_N: torch.Tensor | None = None,
                     prompts_NP: torch.Tensor | None = None) -> TrainingSet:
        """Rows where ``keep_N`` (all by default), with ``prompts_NP`` shown to the student
        instead of the prompts the teacher answered (inoculation)."""
        logits = self.outputs.logits_NAV if self.targets == "logits" else None
        data = TrainingSet(self.outputs.prompts_NP if prompts_NP is None else prompts_NP,
                           self.outputs.answers_NA, logits)
        if keep_N is None:
            return data
        return data.select(torch.nonzero(keep_N).flatten())

    def plan(self, keep_N: torch.Tensor | None = None, prompts_NP: torch.Tensor | None = None,
             **extra) -> Plan:
        data = self.training_set(keep_N, prompts_NP)
        record = {**self.record, "trained_on": len(data), **extra}
        return Plan(data, self.objective(), record)


def draft(ctx: Context, p: TargetParams, **spec_overrides) -> Draft:
    """Build the transfer set (``p``'s transfer options, then ``spec_overrides``) and get the
    teacher's outputs on it:
    greedy decoding for ``logits`` and ``greedy`` targets, sampling at ``p.temperature`` for
    ``sample``."""
    spec: TransferSpec = ctx.transfer_spec(p, **{**p.transfer_options(), **spec_overrides})
    transfer = build_transfer(spec)
    temperature = p.temperature if p.targets == "sample" else None
    outputs = ctx.outputs(spec, transfer, temperature)
    record = {"transfer": transfer.stats.to_json(),
              "targets": {"kind": p.targets, "temperature": p.temperature if p.targets != "greedy" else None,
                          "from_cache": outputs.cached}}
    return Draft(transfer, outputs, p.targets, p.temperature, record)

