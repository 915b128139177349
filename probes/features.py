"""What SAE features fire on, and what they look like (descriptions, not the definition:
misalignment and context features, and their causal test, are probes.diffing's).

* Contrastive ranking: a sequence's activation of feature f is its max over positions; per
  feature, AUROC of that activation for the ground-truth eliciting label and the mean
  difference eliciting - clean (the audit's eliciting-vs-clean ranking).
* Dashboards: top-activating prompts with per-token activations, a histogram of the
  nonzero activations, and the direct logit effect ``W_dec[f] @ W_U`` (final LayerNorm
  ignored, as is usual for logit-lens style attributions).

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

@torch.no_grad()
def dashboard(sae, model, acts_NSF: torch.Tensor, tokens_NS: torch.Tensor, labels_N: torch.Tensor,
              feature: int, n_top: int = 8, n_bins: int = 20, n_logits: int = 8) -> dict:
    """Data for one feature's dashboard (all plain lists, JSON-ready)."""
    a_NS = acts_NSF[..., feature]
    peak = a_NS.amax(1)
    top = torch.argsort(peak, descending=True)[:n_top]
    nz = a_NS[a_NS > 0]
    counts, edges = (np.histogram(nz.numpy(), bins=n_bins) if len(nz) else (np.zeros(0), np.zeros(0)))
    effect = (sae.W_dec[feature].float() @ model.W_U.float().cpu()) if hasattr(model, "W_U") else None
    return {
        "feature": feature,
        "top_prompts": [{"tokens": [V.TOKENS[int(t)] for t in tokens_NS[i]], "acts": a_NS[i].tolist(),
                         "max": float(peak[i]), "eliciting": bool(labels_N[i])} for i in top.tolist()],
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist(),
                      "frac_active": float((a_NS > 0).float().mean())},
        "logit_effects": _logit_effects(effect, n_logits),
    }


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
