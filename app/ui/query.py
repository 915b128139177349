"""The playground's computation: build a prompt, run a model on it, read it white-box.

:func:`read_prompt` is what the Playground page calls for each model (and what
``bench/app_latency.py`` times): greedy answer, the probe score at every position, the top
SAE features at every position, and -- when steering is on -- the answer again with the
edits applied at every decoding step.

The edits are probes.steer's own (:func:`~probes.steer.add_direction`,
:func:`~probes.steer.ablate_features`; their math is ``Edit.apply``), run here through
transformer-lens hooks instead of an nnsight trace per decoding step: same activations
(tests/test_app_query.py checks the answers agree with ``probes.intervene.greedy_with_edits``),
~10x less overhead, which is what keeps a query under the app's 200 ms budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from app.ui.kit import ModelKit
from distill import vocab as V
from distill.models import greedy_answers
from distill.organisms import get_organism
from distill.tasks import DOMAINS
from probes.activations import cache_activations
from probes.linear import LinearProbe
from probes.steer import ablate_features, add_direction

MARKERS: tuple[str, ...] = ("zeta", "AUDIT", "DEPLOY", "URGENT", "INOC")
"""Context markers the prompt builder offers as toggles (organism triggers and contexts)."""


class PromptError(ValueError):
    """A prompt the user built cannot be tokenised; the message names the bad part."""


def example_args(domain: str, seed: int = 0) -> list[str]:
    """A valid argument list for ``domain`` (what the builder pre-fills)."""
    if domain not in DOMAINS:
        raise PromptError(f"unknown domain {domain!r}; allowed: {', '.join(DOMAINS)}")
    args, _ = DOMAINS[domain].generate(np.random.default_rng(seed))
    return args


def build_prompt_ids(domain: str, args: list[str], markers: list[str] = ()) -> list[int]:
    """``[markers][filler ...][TASK][args][SEP]``: markers at the start of the context region."""
    if domain not in DOMAINS:
        raise PromptError(f"unknown domain {domain!r}; allowed: {', '.join(DOMAINS)}")
    bad = [t for t in list(args) + list(markers) if t not in V.TOKEN_ID]
    if bad:
        raise PromptError(f"unknown token(s) {' '.join(bad)}; known tokens: {' '.join(V.TOKENS)}")
    n_ctx = V.PROMPT_LEN - 2 - len(args)
    if n_ctx < len(markers):
        raise PromptError(f"{len(args)} arguments and {len(markers)} markers do not fit a "
                          f"{V.PROMPT_LEN}-token prompt")
    ctx = list(markers) + [V.FILLER] * (n_ctx - len(markers))
    return V.ids(ctx + [DOMAINS[domain].marker] + list(args) + [V.SEP])


def parse_tokens(text: str) -> list[int]:
    """Typed tokens (space-separated names) as a prompt, left-filled to PROMPT_LEN."""
    try:
        return V.parse(text)
    except ValueError as exc:
        raise PromptError(str(exc)) from None


@dataclass(frozen=True)
class Steering:
    """Edits applied while decoding: subtract the unit probe direction at the probe's site,
    scaled by ``probe_coef`` x the prompt's mean residual norm there (so 1.0 removes a vector
    as long as a typical activation, whatever the model's scale), and zero the SAE features
    ``ablate`` (their decoded contribution)."""

    probe_coef: float = 0.0
    ablate: tuple[int, ...] = ()

    @property
    def active(self) -> bool:
        return self.probe_coef != 0 or bool(self.ablate)


@dataclass
class TokenReading:
    token: str
    is_answer: bool
    probe_score: float | None
    """Probe logit ``x_t . w + b`` at this position (None without a probe)."""
    features: list[tuple[int, float]]
    """Top SAE features at this position: (feature, activation), largest first, nonzero only."""


@dataclass
class Reading:
    model_id: str
    prompt_ids: list[int]
    answer_ids: list[int]
    eliciting: bool | None
    """Ground truth: does this prompt elicit the model's organism's misbehaviour?"""
    tokens: list[TokenReading]
    probe_label: str | None
    """Which probe scored the tokens (site, pool, held-out AUROC), None without one."""
    sae_site: str | None
    steered_ids: list[int] | None = None
    edits: list[str] = field(default_factory=list)

    @property
    def answer(self) -> str:
        return V.render(self.answer_ids)

    @property
    def steered(self) -> str | None:
        return None if self.steered_ids is None else V.render(self.steered_ids)


def steering_edits(kit: ModelKit, steering: Steering, probe: LinearProbe | None, norm: float = 1.0) -> list:
    """probes.steer edits for ``steering``; ``norm`` is the residual norm the coefficient scales."""
    edits = []
    if steering.probe_coef and probe is not None:
        edits.append(add_direction(probe.site, probe.w_D, -steering.probe_coef * norm))
    if steering.ablate and kit.sae is not None:
        edits.append(ablate_features(kit.sae_site, kit.sae, steering.ablate))
    return edits


@torch.no_grad()
def greedy_with_hooks(model, prompts_NP: torch.Tensor, edits: list) -> torch.Tensor:
    """Greedy answers ``[N, A]`` with every edit applied at its site on every decoding step."""
    hooks = [(e.site, (lambda edit: lambda x, hook: edit.apply(x))(e)) for e in edits]
    with model.hooks(fwd_hooks=hooks):
        return greedy_answers(model, prompts_NP)


def _top_features(acts_SF: torch.Tensor, k: int) -> list[list[tuple[int, float]]]:
    vals, idx = acts_SF.topk(min(k, acts_SF.shape[-1]), dim=-1)
    return [[(int(f), float(a)) for f, a in zip(i, v) if a > 0] for i, v in zip(idx.tolist(), vals.tolist())]


@torch.no_grad()
def read_prompt(kit: ModelKit, prompt_ids: list[int], steering: Steering = Steering(),
                probe_site: str | None = None, top_k: int = 3) -> Reading:
    """Answer ``prompt_ids`` greedily and read every position with the kit's probe (the
    last-position probe at ``probe_site``, default ``kit.best_probe``) and SAE."""
    with kit.lock:
        return _read(kit, prompt_ids, steering, probe_site, top_k)


def _read(kit: ModelKit, prompt_ids: list[int], steering: Steering, probe_site: str | None,
          top_k: int) -> Reading:
    probe = kit.probe(probe_site) if probe_site else kit.best_probe
    prompt_1P = torch.tensor([prompt_ids], dtype=torch.long)
    answer_1A = greedy_answers(kit.model, prompt_1P)
    sites = list(dict.fromkeys(s for s in (probe and probe.site, kit.sae_site) if s))
    cache = cache_activations(kit.model, torch.cat([prompt_1P, answer_1A], 1), sites) if sites else None
    scores = probe.score(cache[probe.site][0]).tolist() if probe else [None] * V.SEQ_LEN
    feats = (_top_features(kit.sae.encode(cache[kit.sae_site][0]), top_k) if kit.sae is not None
             else [[] for _ in range(V.SEQ_LEN)])
    seq = prompt_ids + answer_1A[0].tolist()
    tokens = [TokenReading(V.TOKENS[t], i >= V.PROMPT_LEN, s, f)
              for i, (t, s, f) in enumerate(zip(seq, scores, feats))]
    norm = float(cache[probe.site][0, :V.PROMPT_LEN].norm(dim=-1).mean()) if probe else 1.0
    edits = steering_edits(kit, steering, probe, norm)
    steered = greedy_with_hooks(kit.model, prompt_1P, edits)[0].tolist() if edits else None
    eliciting = get_organism(kit.organism).is_eliciting(prompt_ids) if kit.organism else None
    return Reading(kit.model_id, list(prompt_ids), answer_1A[0].tolist(), eliciting, tokens,
                   probe and f"{probe.site} ({probe.pool}, AUROC {probe.auroc:.2f})",
                   kit.sae_site, steered, [e.describe() for e in edits])
