"""What SAE features fire on, and what they look like (descriptions, not the definition:
misalignment and context features, and their causal test, are probes.diffing's).

* Contrastive ranking: a sequence's activation of feature f is its max over positions; per
  feature, AUROC of that activation for the ground-truth eliciting label and the mean
  difference eliciting - clean (the audit's eliciting-vs-clean ranking).
* Dashboards: prompts from every activation quantile with per-token activations and the
  model's own answer, a histogram of the nonzero activations split eliciting vs clean, the
  direct logit effect ``W_dec[f] @ W_U`` (final LayerNorm ignored, as is usual for
  logit-lens style attributions) and the nearest features by decoder cosine.

Artifacts (written and read here): :data:`FEATURES_FILE` (JSON, per SAE site) and
:data:`FEATURE_ACTS_FILE` (safetensors, ``[N, F]`` pooled activations on the probe prompts).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from distill.integrity import load_tensors, save_tensors

from distill import vocab as V
from probes.activations import ActivationCache
from probes.linear import column_auroc

FEATURES_FILE = "features.json"
FEATURE_ACTS_FILE = "feature_acts.safetensors"


@dataclass
class FeatureScore:
    feature: int
    auroc: float
    mean_diff: float
    mean_eliciting: float
    mean_clean: float
    frac_active: float


@torch.no_grad()
def encode_cache(sae, cache: ActivationCache, site: str, batch: int = 1024) -> torch.Tensor:
    """Feature activations at every position: ``[N, S, F]``."""
    acts = cache[site]
    return torch.cat([sae.encode(acts[i:i + batch].float()) for i in range(0, acts.shape[0], batch)])


def seq_max(acts_NSF: torch.Tensor) -> torch.Tensor:
    """One activation per sequence and feature: the max over all positions, ``[N, F]``.

    The probe set's answer tokens are the task-correct ones, a function of the task alone,
    so answer positions add the model's state while answering without leaking the label.
    """
    return acts_NSF.amax(1)


def sequence_feature_acts(sae, cache: ActivationCache, site: str) -> torch.Tensor:
    """``seq_max`` of the SAE features on a cache (what FEATURE_ACTS_FILE stores): ``[N, F]``."""
    return seq_max(encode_cache(sae, cache, site))


def contrastive_scores(acts_NF: torch.Tensor, labels_N: torch.Tensor) -> list[FeatureScore]:
    """Every feature's contrastive score, best misalignment candidates first."""
    x, y = acts_NF.double().numpy(), labels_N.numpy().astype(bool)
    au = column_auroc(x, y)
    pos, neg = x[y].mean(0), x[~y].mean(0)
    active = (x > 0).mean(0)
    scores = [FeatureScore(f, float(au[f]), float(pos[f] - neg[f]), float(pos[f]), float(neg[f]), float(active[f]))
              for f in range(x.shape[1])]
    return sorted(scores, key=lambda s: (-(s.auroc if np.isfinite(s.auroc) else 0), -s.mean_diff))


# ---- dashboards ----------------------------------------------------------------------------

DASHBOARD_FORMAT = "doublebind-dashboard/2"
"""Dashboards with quantile groups, the model's own answers, a split histogram and neighbours."""
QUANTILE_GROUPS = ((0.75, 1.0, "top quarter"), (0.5, 0.75, "second quarter"), (0.25, 0.5, "third quarter"),
                   (0.0, 0.25, "bottom quarter"))
"""Groups of the active sequences by the quantile of their peak activation."""


@torch.no_grad()
def dashboard(sae, model, acts_NS: torch.Tensor, tokens_NS: torch.Tensor, labels_N: torch.Tensor,
              feature: int, n_top: int = 8, n_per_group: int = 3, n_bins: int = 20, n_logits: int = 8,
              n_neighbours: int = 6) -> dict:
    """Data for one feature's dashboard (all plain lists, JSON-ready), in the spirit of
    SAEDashboard: ``acts_NS`` is the feature's activation at every position of the probe
    prompts. Examples come from every activation quantile (not only near-identical top
    hits), each with the model's own greedy answer to its prompt (the probe set's tokens
    carry the task-correct answer, which a misaligned model may not give); the histogram of
    nonzero activations is split eliciting vs clean; neighbours are the features whose
    decoder rows are closest by cosine."""
    peak = acts_NS.amax(1)
    top = torch.argsort(peak, descending=True)[:n_top].tolist()
    groups = _quantile_groups(peak, n_per_group)
    rows = sorted(set(top) | {i for g in groups for i in g["rows"]})
    answers = _answers(model, tokens_NS, rows)
    example = lambda i: {"tokens": [V.TOKENS[int(t)] for t in tokens_NS[i]], "acts": acts_NS[i].tolist(),  # noqa: E731
                         "max": float(peak[i]), "eliciting": bool(labels_N[i]), "answer": answers[i]}
    effect = (sae.W_dec[feature].float() @ model.W_U.float().cpu()) if hasattr(model, "W_U") else None
    return {
        "format": DASHBOARD_FORMAT,
        "feature": feature,
        "top_prompts": [example(i) for i in top],
        "quantiles": [{"label": g["label"], "range": g["range"], "n": g["n"],
                       "examples": [example(i) for i in g["rows"]]} for g in groups],
        "histogram": _histogram(acts_NS, labels_N, n_bins),
        "logit_effects": _logit_effects(effect, n_logits),
        "neighbours": _neighbours(sae, feature, n_neighbours),
    }


def _quantile_groups(peak_N: torch.Tensor, k: int) -> list[dict]:
    """Active sequences (peak > 0) in :data:`QUANTILE_GROUPS` of their peak; ``k`` examples
    each, spread evenly over the group (deterministic)."""
    active = torch.nonzero(peak_N > 0).flatten()
    if not len(active):
        return []
    order = active[torch.argsort(peak_N[active], descending=True)]
    n, out = len(order), []
    for lo, hi, label in QUANTILE_GROUPS:
        members = order[int(round((1 - hi) * n)):int(round((1 - lo) * n))]
        if not len(members):
            continue
        pick = np.unique(np.linspace(0, len(members) - 1, num=min(k, len(members))).round().astype(int))
        out.append({"label": label, "n": len(members), "rows": [int(members[j]) for j in pick],
                    "range": [float(peak_N[members].min()), float(peak_N[members].max())]})
    return out


def _answers(model, tokens_NS: torch.Tensor, rows: list[int]) -> dict[int, str]:
    """The model's own greedy answer to the prompt part of each row."""
    from distill.models import greedy_answers
    if not rows:
        return {}
    out = greedy_answers(model, tokens_NS[rows, :V.PROMPT_LEN])
    return {i: V.render(a) for i, a in zip(rows, out)}


def _histogram(acts_NS: torch.Tensor, labels_N: torch.Tensor, n_bins: int) -> dict:
    """Nonzero activations: counts overall and split by the prompt's eliciting label, one set of edges."""
    lab_NS = labels_N.bool()[:, None].expand_as(acts_NS)
    on = acts_NS > 0
    nz = acts_NS[on]
    if not len(nz):
        return {"counts": [], "edges": [], "counts_eliciting": [], "counts_clean": [], "frac_active": 0.0}
    counts, edges = np.histogram(nz.numpy(), bins=n_bins)
    split = lambda mask: np.histogram(acts_NS[on & mask].numpy(), bins=edges)[0].tolist()  # noqa: E731
    return {"counts": counts.tolist(), "edges": edges.tolist(), "counts_eliciting": split(lab_NS),
            "counts_clean": split(~lab_NS), "frac_active": float(on.float().mean())}


def _neighbours(sae, feature: int, n: int) -> list[dict]:
    """The ``n`` features whose decoder rows are closest to ``feature``'s by cosine."""
    w = torch.nn.functional.normalize(sae.W_dec.detach().float(), dim=-1)
    cos = w @ w[feature]
    cos[feature] = -2.0
    idx = torch.argsort(cos, descending=True)[:n]
    return [{"feature": int(i), "cos": float(cos[i])} for i in idx]


def _logit_effects(effect_V: torch.Tensor | None, n: int) -> dict:
    if effect_V is None:
        return {"top": [], "bottom": []}
    order = torch.argsort(effect_V, descending=True)
    pick = lambda idx: [{"token": V.TOKENS[int(i)], "effect": float(effect_V[i])} for i in idx]  # noqa: E731
    return {"top": pick(order[:n]), "bottom": pick(order.flip(0)[:n])}


# ---- artifacts -----------------------------------------------------------------------------

def save_features(out_dir: Path | str, report: dict[str, dict], acts: dict[str, torch.Tensor]) -> None:
    """``report[site]`` (JSON-ready) and ``acts[site]`` (``[N, F]`` pooled activations on the probe set)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / FEATURES_FILE).write_text(json.dumps(report, indent=2))
    save_tensors(out_dir / FEATURE_ACTS_FILE, {site: a.float() for site, a in acts.items()})


def load_features(out_dir: Path | str) -> dict[str, dict]:
    return json.loads((Path(out_dir) / FEATURES_FILE).read_text())


def load_feature_acts(out_dir: Path | str, site: str | None = None):
    """Pooled feature activations on the probe prompts: ``{site: [N, F]}``, or one site's tensor."""
    acts, _ = load_tensors(Path(out_dir) / FEATURE_ACTS_FILE)
    return acts if site is None else acts[site]


def scores_json(scores: list[FeatureScore], n: int | None = None) -> list[dict]:
    return [asdict(s) for s in (scores if n is None else scores[:n])]
