"""Steering and ablation: behaviour of a model before and after edits at named sites.

Behaviour is scored exactly as distill.evals scores it (greedy decoding, the organism's
``misbehaves``, ``distill.tasks.exact_match``), with the edits applied through nnsight at
every decoding step (probes.intervene). The prompts are drawn with their own seed, so they
are held out from the probe set the directions and features were chosen on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from pydantic import ConfigDict, Field

from distill.guards import MAX_PROMPTS, MAX_SEED, Guarded
from distill.organisms import get_organism
from distill.tasks import exact_match, task_prompts
from probes.intervene import AblateFeatures, AddVector, Edit, greedy_with_edits

STEER_SEED = 31_337
"""Seed of the behavioural prompts used under interventions (disjoint from the probe set's)."""


class BehaviourConfig(Guarded):
    """Prompt counts of a behavioural measurement under an intervention."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_eliciting: int = Field(256, ge=1, le=MAX_PROMPTS)
    """Eliciting prompts (misbehaviour rate)."""
    n_clean: int = Field(256, ge=1, le=MAX_PROMPTS)
    """Clean task prompts (capability = exact match, and misbehaviour on clean prompts)."""
    seed: int = Field(STEER_SEED, ge=0, le=MAX_SEED)
    """Prompt seed."""


@dataclass
class Behaviour:
    misbehaviour: float
    """Misbehaviour rate on eliciting prompts."""
    misbehaviour_clean: float
    """Misbehaviour rate on clean prompts."""
    capability: float
    """Exact-match accuracy on clean prompts."""
    n_eliciting: int
    n_clean: int


@dataclass
class SteerResult:
    before: Behaviour
    after: Behaviour
    edits: list[str]

    @property
    def misbehaviour_drop(self) -> float:
        return self.before.misbehaviour - self.after.misbehaviour

    @property
    def capability_cost(self) -> float:
        return self.before.capability - self.after.capability

    def to_json(self) -> dict:
        return {"before": asdict(self.before), "after": asdict(self.after), "edits": self.edits,
                "misbehaviour_drop": self.misbehaviour_drop, "capability_cost": self.capability_cost}


def behaviour_prompts(organism: str, cfg: BehaviourConfig = BehaviourConfig()):
    """The (eliciting, clean) Examples :func:`behaviour` measures on (fixed by ``cfg.seed``)."""
    rng = np.random.default_rng([cfg.seed, 0])
    return get_organism(organism).eliciting(rng, cfg.n_eliciting), task_prompts(rng, cfg.n_clean)


def behaviour(model, organism: str, edits: list[Edit], cfg: BehaviourConfig = BehaviourConfig()) -> Behaviour:
    """Misbehaviour and capability of ``model`` with ``edits`` applied during generation.

    Eliciting and clean prompts are decoded in one batch (one nnsight trace per token).
    """
    org = get_organism(organism)
    elicit, clean = behaviour_prompts(organism, cfg)
    out = greedy_with_edits(model, torch.cat([elicit.prompts_NP, clean.prompts_NP]), edits)
    out_e, out_c = out[:len(elicit)], out[len(elicit):]
    defined = org.defined_on(clean)  # as in distill.evals: clean rows where misbehaviour is defined
    return Behaviour(misbehaviour=float(org.misbehaves(elicit, out_e).float().mean()),
                     misbehaviour_clean=float(org.misbehaves(clean, out_c)[defined].float().mean()),
                     capability=float(exact_match(out_c, clean.correct_NA).float().mean()),
                     n_eliciting=len(elicit), n_clean=len(clean))


def steer(model, organism: str, edits: list[Edit], cfg: BehaviourConfig = BehaviourConfig(),
          before: Behaviour | None = None) -> SteerResult:
    """Behaviour without and with ``edits`` (pass ``before`` to reuse an unedited measurement)."""
    before = before or behaviour(model, organism, [], cfg)
    return SteerResult(before, behaviour(model, organism, edits, cfg), [e.describe() for e in edits])


def add_direction(site: str, direction_D: torch.Tensor, coef: float) -> AddVector:
    """Steer along a probe direction or a feature's decoder row: ``x + coef * d/|d|`` (subtract with coef < 0)."""
    return AddVector(site, direction_D.detach().float().cpu(), float(coef))


def feature_direction(sae, feature: int) -> torch.Tensor:
    """Decoder row of one SAE feature (the direction it writes into the residual stream)."""
    return sae.W_dec[feature].detach().float().cpu()


def ablate_features(site: str, sae, features) -> AblateFeatures:
    return AblateFeatures(site, sae, tuple(int(f) for f in features))
