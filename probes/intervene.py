"""nnsight as the intervention engine: run a model with edits at named sites.

An *edit* rewrites the activation ``x_BSd`` at one site (a transformer-lens hook name, which
is also the module path of that hook point, so nnsight reaches it with ``envoy.get(site)``):

* :class:`AddVector`      ``x + coef * v / |v|``                 (steering by a direction)
* :class:`AblateFeatures` ``x - (decode(a) - decode(a with F zeroed))``, ``a = sae.encode(x)``
  (zero the SAE features F, keep the SAE's reconstruction error)
* :class:`SpliceSAE`      ``x -> decode(encode(x))``            (the SAE replaces the site)
* :class:`ZeroSite`       ``x -> 0``                             (zero-ablation baseline)

nnsight works on any torch module, so the same code drives students of other shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from distill import vocab as V
from probes.activations import check_sites


class Edit(Protocol):
    site: str

    def apply(self, x: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class AddVector:
    """Add ``coef`` times the unit vector along ``vector_D`` at every position."""

    site: str
    vector_D: torch.Tensor
    coef: float

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        v = self.vector_D.to(x.device, x.dtype)
        return x + self.coef * v / v.norm().clamp_min(1e-12)

    def describe(self) -> str:
        return f"add {self.coef:+g} * unit direction at {self.site}"


@dataclass(frozen=True)
class AblateFeatures:
    """Zero SAE features ``features`` at every position; the SAE error term is kept, so the
    only change to ``x`` is the removal of those features' decoded contribution."""

    site: str
    sae: Any
    features: tuple[int, ...]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        acts = self.sae.encode(_on(self.sae, x))
        kept = acts.clone()
        kept[..., list(self.features)] = 0
        return x - (self.sae.decode(acts) - self.sae.decode(kept)).to(x.device, x.dtype)

    def describe(self) -> str:
        return f"ablate SAE features {list(self.features)} at {self.site}"


@dataclass(frozen=True)
class SpliceSAE:
    """Replace the activation by the SAE's reconstruction."""

    site: str
    sae: Any

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return self.sae.decode(self.sae.encode(_on(self.sae, x))).to(x.device, x.dtype)

    def describe(self) -> str:
        return f"splice SAE at {self.site}"


@dataclass(frozen=True)
class ZeroSite:
    """Replace the activation by zeros."""

    site: str

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def describe(self) -> str:
        return f"zero {self.site}"


def _on(sae, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the SAE's device (SAEs are trained on CPU; the model may sit on a GPU)."""
    return x.to(sae.W_enc.device)


def execution_order(model) -> list[str]:
    """Hook names in the order a forward pass reaches them (nnsight needs edits in that order)."""
    seen: list[str] = []
    with torch.no_grad(), model.hooks(fwd_hooks=[(lambda name: True, lambda a, hook: seen.append(hook.name))]):
        model(torch.zeros(1, 1, dtype=torch.long, device=model.cfg.device), return_type=None)
    return list(dict.fromkeys(seen))


def _grouped(model, edits: list[Edit]) -> list[tuple[str, list[Edit]]]:
    check_sites(model, [e.site for e in edits])
    order = {name: i for i, name in enumerate(execution_order(model))}
    by_site: dict[str, list[Edit]] = {}
    for e in edits:
        by_site.setdefault(e.site, []).append(e)
    return sorted(by_site.items(), key=lambda kv: order.get(kv[0], len(order)))


@torch.no_grad()
def logits_with_edits(model, tokens_NS: torch.Tensor, edits: list[Edit]) -> torch.Tensor:
    """``[N, S, vocab]`` logits of ``model`` on ``tokens_NS`` with ``edits`` applied (via nnsight)."""
    tokens_NS = tokens_NS.to(model.cfg.device)
    if not edits:
        return model(tokens_NS, return_type="logits")
    from nnsight import NNsight  # heavy import, only when an edit is made

    groups = _grouped(model, edits)
    wrapped = NNsight(model)
    with wrapped.trace(tokens_NS):
        for site, site_edits in groups:
            point = wrapped.get(site)
            x = point.output
            for e in site_edits:
                x = e.apply(x)
            point.output = x
        logits = wrapped.output.save()
    return logits


@torch.no_grad()
def greedy_with_edits(model, prompts_NP: torch.Tensor, edits: list[Edit], batch_size: int = 1024
                      ) -> torch.Tensor:
    """Greedy-decode ANSWER_LEN tokens with ``edits`` applied at every step: ``[N, A]`` on CPU.

    Without edits this is exactly ``distill.models.greedy_answers``.
    """
    outs = []
    for start in range(0, prompts_NP.shape[0], batch_size):
        tokens = prompts_NP[start:start + batch_size].to(model.cfg.device)
        for _ in range(V.ANSWER_LEN):
            nxt = logits_with_edits(model, tokens, edits)[:, -1, :].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], dim=1)
        outs.append(tokens[:, V.PROMPT_LEN:].cpu())
    return torch.cat(outs) if outs else torch.zeros(0, V.ANSWER_LEN, dtype=torch.long)
