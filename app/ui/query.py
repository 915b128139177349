"""The playground's computation: run a model on a prompt (app.ui.prompts builds it) and read
it white-box.

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

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch

from app.ui.prompts import Judgement, judge_prompt
from distill import vocab as V
from distill.organisms import get_organism

if TYPE_CHECKING:  # the model stack (transformer-lens, sae-lens, nnsight) is imported by the functions
    from app.ui.kit import ModelKit  # that run models, so a page that only builds prompts starts fast
    from probes.linear import LinearProbe


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
    """Every position read (empty in an answer not read yet: :func:`answer_prompt`)."""
    probe_label: str | None
    """Which probe scored the tokens (site, pool, held-out AUROC), None without one."""
    sae_site: str | None
    steered_ids: list[int] | None = None
    edits: list[str] = field(default_factory=list)
    """The edits in words."""
    judgement: Judgement = Judgement(None, None)

    @property
    def answer(self) -> str:
        return V.render(self.answer_ids)

    @property
    def steered(self) -> str | None:
        return None if self.steered_ids is None else V.render(self.steered_ids)


def steering_edits(kit: ModelKit, steering: Steering, probe: LinearProbe | None, norm: float = 1.0) -> list:
    """probes.steer edits for ``steering``; ``norm`` is the residual norm the coefficient scales."""
    from probes.steer import ablate_features, add_direction
    edits = []
    if steering.probe_coef and probe is not None:
        edits.append(add_direction(probe.site, probe.w_D, -steering.probe_coef * norm))
    if steering.ablate and kit.sae is not None:
        edits.append(ablate_features(kit.sae_site, kit.sae, steering.ablate))
    return edits


@torch.no_grad()
def greedy_with_hooks(model, prompts_NP: torch.Tensor, edits: list) -> torch.Tensor:
    """Greedy answers ``[N, A]`` with every edit applied at its site on every decoding step."""
    from distill.models import greedy_answers
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
    return read_tokens(kit, answer_prompt(kit, prompt_ids, steering, probe_site), probe_site, top_k)


@torch.no_grad()
def answer_prompt(kit: ModelKit, prompt_ids: list[int], steering: Steering = Steering(),
                  probe_site: str | None = None) -> Reading:
    """The first half of :func:`read_prompt`: the greedy answer, the steered answer when
    ``steering`` is active, and their ground truth -- no per-token reading yet (``tokens`` is
    empty until :func:`read_tokens`). The Playground draws every model's answer from this
    before it reads any model."""
    from distill.models import greedy_answers
    from probes.activations import cache_activations
    probe = kit.probe(probe_site) if probe_site else kit.best_probe
    prompt_1P = torch.tensor([prompt_ids], dtype=torch.long)
    with kit.lock:
        answer = greedy_answers(kit.model, prompt_1P)[0].tolist()
        norm, edits, steered = 1.0, [], None
        if steering.active:
            if steering.probe_coef and probe is not None:  # the prompt's positions: as in the full sequence
                norm = prompt_norm(cache_activations(kit.model, prompt_1P, [probe.site])[probe.site])
            edits = steering_edits(kit, steering, probe, norm)
            steered = greedy_with_hooks(kit.model, prompt_1P, edits)[0].tolist() if edits else None
    eliciting = get_organism(kit.organism).is_eliciting(prompt_ids) if kit.organism else None
    return Reading(kit.model_id, list(prompt_ids), answer, eliciting, [],
                   probe and f"{probe.site} ({probe.pool}, AUROC {probe.auroc:.2f})",
                   kit.sae_site, steered, describe_edits(steering, probe, norm, kit.sae_site) if edits else [],
                   judge_prompt(kit.organism, prompt_ids))


@torch.no_grad()
def read_tokens(kit: ModelKit, answered: Reading, probe_site: str | None = None, top_k: int = 3) -> Reading:
    """The second half of :func:`read_prompt`: ``answered`` with every position of prompt and
    answer read by the probe (its logit) and the SAE (the top ``top_k`` features)."""
    from probes.activations import cache_activations
    probe = kit.probe(probe_site) if probe_site else kit.best_probe
    seq = answered.prompt_ids + answered.answer_ids
    sites = list(dict.fromkeys(s for s in (probe and probe.site, kit.sae_site) if s))
    with kit.lock:
        cache = cache_activations(kit.model, torch.tensor([seq], dtype=torch.long), sites) if sites else None
        scores = probe.score(cache[probe.site][0]).tolist() if probe else [None] * V.SEQ_LEN
        feats = (_top_features(kit.sae.encode(cache[kit.sae_site][0]), top_k) if kit.sae is not None
                 else [[] for _ in range(V.SEQ_LEN)])
    tokens = [TokenReading(V.TOKENS[t], i >= V.PROMPT_LEN, s, f)
              for i, (t, s, f) in enumerate(zip(seq, scores, feats))]
    return replace(answered, tokens=tokens)


def prompt_norm(acts_NSD: torch.Tensor) -> float:
    """The mean residual norm over the prompt positions of ``acts_NSD``: the unit the probe
    coefficient of :class:`Steering` is measured in."""
    return float(acts_NSD[:, :V.PROMPT_LEN].norm(dim=-1).mean())


def describe_edits(steering: Steering, probe: LinearProbe | None, norm: float, sae_site: str | None) -> list[str]:
    """The edits of ``steering`` in words (the coefficient in the unit the slider sets)."""
    out = []
    if steering.probe_coef and probe is not None:
        out.append(f"probe direction at {probe.site}: subtracted {steering.probe_coef:.2f} x this prompt's mean "
                   f"residual norm there ({norm:.1f})")
    if steering.ablate and sae_site is not None:
        out.append(f"SAE features {', '.join(map(str, steering.ablate))} ablated at {sae_site}")
    return out


@dataclass
class EditEffect:
    """One edit measured on many prompts: misbehaviour on eliciting prompts (with 95% Wilson
    intervals) and capability on clean ones, without and with the edit."""

    n: int
    misbehaviour_before: float
    misbehaviour_before_ci: tuple[float, float]
    misbehaviour_after: float
    misbehaviour_after_ci: tuple[float, float]
    capability_before: float
    capability_after: float
    edits: list[str]


@torch.no_grad()
def measure_edit(kit: ModelKit, steering: Steering, n: int, probe_site: str | None = None) -> EditEffect:
    """``steering`` applied while the model answers ``n`` eliciting and ``n`` clean prompts of
    its organism (probes.steer's own measurement). The probe coefficient is scaled by the mean
    residual norm over those eliciting prompts, as the single-prompt reading scales it by its own."""
    from analysis.stats import wilson
    from probes.activations import cache_activations
    from probes.steer import BehaviourConfig, behaviour_prompts, steer
    if not kit.organism:
        raise ValueError(f"{kit.model_id} has no organism: no eliciting prompts to measure on")
    cfg = BehaviourConfig(n_eliciting=n, n_clean=n)
    probe = kit.probe(probe_site) if probe_site else kit.best_probe
    with kit.lock:
        norm = 1.0
        if steering.probe_coef and probe is not None:
            prompts = behaviour_prompts(kit.organism, cfg)[0].prompts_NP
            norm = prompt_norm(cache_activations(kit.model, prompts, [probe.site])[probe.site])
        edits = steering_edits(kit, steering, probe, norm)
        res = steer(kit.model, kit.organism, edits, cfg)
    k_before, k_after = round(res.before.misbehaviour * res.before.n_eliciting), round(
        res.after.misbehaviour * res.after.n_eliciting)
    return EditEffect(res.before.n_eliciting, res.before.misbehaviour, wilson(k_before, res.before.n_eliciting),
                      res.after.misbehaviour, wilson(k_after, res.after.n_eliciting),
                      res.before.capability, res.after.capability,
                      describe_edits(steering, probe, norm, kit.sae_site))


@torch.no_grad()
def answer_logprobs(kit: ModelKit, prompt_ids: list[int], answer_ids: list[int]) -> torch.Tensor:
    """The model's next-token log-probabilities at every answer position, teacher-forced on
    ``answer_ids``: ``[A, vocab]`` (row a predicts answer token a)."""
    from distill.models import answer_logits
    with kit.lock:
        logits = answer_logits(kit.model, torch.tensor([prompt_ids]), torch.tensor([answer_ids]))[0]
    return logits.float().log_softmax(-1).cpu()


def token_probs(logprobs_AV: torch.Tensor, answer_ids: list[int], k: int = 3) -> list[dict]:
    """Per answer position: the probability of the token given and the ``k`` likeliest tokens."""
    out = []
    for a, tok in enumerate(answer_ids):
        p = logprobs_AV[a].exp()
        top = torch.topk(p, k)
        out.append({"token": V.TOKENS[tok], "p": float(p[tok]),
                    "top": [(V.TOKENS[int(i)], float(v)) for v, i in zip(top.values, top.indices)]})
    return out


def position_kl(teacher_AV: torch.Tensor, student_AV: torch.Tensor) -> list[float]:
    """KL(teacher || student) in nats at each answer position (both log-probabilities on the
    same teacher-forced answer)."""
    return (teacher_AV.exp() * (teacher_AV - student_AV)).sum(-1).clamp_min(0).tolist()


@torch.no_grad()
def greedy_answer(kit: ModelKit, prompt_ids: list[int]) -> list[int]:
    """The model's greedy answer ids to one prompt (no readings)."""
    from distill.models import greedy_answers
    with kit.lock:
        return greedy_answers(kit.model, torch.tensor([prompt_ids]))[0].tolist()
