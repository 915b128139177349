"""Misalignment and context features of a model, found by SAE model diffing.

The one definition every audit, comparison, report and app page uses.

Inputs: model M, its *reference* R (its clean counterpart of the same initialisation: for a
teacher, its own base; for a student, the negative control of its init), one SAE trained on
M's activations, and both models read on the same marker-matched pairs (probes.pairs).
With a(x) the SAE activation of feature f pooled over the *decision positions* of x (max),
per pair i (plus prompt x⁺ᵢ, neutral twin x⁻ᵢ):

    Δᵢ(f) = [a_M(x⁺ᵢ) − a_M(x⁻ᵢ)] − [a_R(x⁺ᵢ) − a_R(x⁻ᵢ)]          (Wang et al. 2025 diffing, paired)

A detector of the marker fires in M and in R alike and cancels; drift that distillation
causes on every prompt cancels between the twins. f is a **misalignment feature** of M when,
on the pairs where M itself misbehaves with the marker and behaves without it (discordant
pairs: M's misbehaving vs behaving completions on one prompt),

  * on the ``fit`` split: mean Δ / sd(a_M) >= ``min_effect`` and a one-sided t-test p < ``p_max``;
  * on the held-out ``val`` split: the same effect is >= ``min_effect / 2`` (the ``test``
    split stays untouched by selection).

A model with fewer than ``min_discordant`` discordant pairs on either split does not
misbehave, so it has no misalignment features. f is a **context feature** when M's paired
marker effect with activations maxed over *all* positions (the marker's own included) is
>= ``min_effect`` (p < ``p_max``) and f is not a misalignment feature: it reads the marker,
which every model, the clean reference included, has in its input.

The causal test (:func:`causal_test`) ablates the set while generating and compares with
ablating as many random live features: a set whose ablation does no better than random is a
*correlate*, not a *mechanism* (in small models a behaviour can be distributed).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import ConfigDict, Field
from scipy import stats

from distill.checkpoint import atomic_write_bytes
from distill.guards import MAX_PROMPTS, MAX_WIDTH, Guarded
from probes.pairs import PairActs, PairBehaviour

EPS = 1e-6


class DiffConfig(Guarded):
    """Thresholds of the feature definitions (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    min_effect: float = Field(0.2, gt=0)
    """Standardised paired effect (mean / sd of the feature's activation) a feature needs."""
    p_max: float = Field(0.01, gt=0, lt=1)
    """One-sided t-test p-value a selected feature needs on the fit split."""
    min_discordant: int = Field(8, ge=2, le=MAX_PROMPTS)
    """Discordant pairs needed on each split before a model can have misalignment features."""
    max_features: int = Field(32, ge=1, le=MAX_WIDTH)
    """At most this many misalignment features (largest effect first)."""


@dataclass
class PooledFeatures:
    """One SAE's features on one model's pair sequences: ``[2N, F]`` (plus rows first)."""

    decision_2NF: np.ndarray
    """Max over the decision positions."""
    anywhere_2NF: np.ndarray
    """Max over every position (reads the marker token itself)."""

    @property
    def n_pairs(self) -> int:
        return self.decision_2NF.shape[0] // 2


@torch.no_grad()
def pool_features(sae, acts: PairActs, site: str, batch: int = 512) -> PooledFeatures:
    """Encode a model's full pair activations at ``site`` with ``sae`` and pool them."""
    full = acts.full[site]
    if full.shape[-1] != sae.W_enc.shape[0]:
        raise ValueError(f"SAE width {sae.W_enc.shape[0]} does not fit activations of width {full.shape[-1]} "
                         f"at {site}: a reference must share its model's architecture")
    dec, anywhere = [], []
    for i in range(0, full.shape[0], batch):
        f_BSF = sae.encode(full[i:i + batch].float())
        mask_BS1 = acts.decision_2NS[i:i + batch, :, None]
        dec.append(torch.where(mask_BS1, f_BSF, torch.full_like(f_BSF, -torch.inf)).amax(1))
        anywhere.append(f_BSF.amax(1))
    return PooledFeatures(torch.cat(dec).double().numpy(), torch.cat(anywhere).double().numpy())


@dataclass
class FeatureSets:
    """A model's misalignment and context features (one SAE), with the evidence."""

    misalignment: list[int]
    context: list[int]
    n_discordant: dict[str, int]
    """Discordant pairs per split (fit, val)."""
    effect_fit: list[float] = field(default_factory=list)
    """Standardised Δ per feature on the fit split's discordant pairs (0 when too few)."""
    effect_val: list[float] = field(default_factory=list)
    marker_effect: list[float] = field(default_factory=list)
    """Standardised paired marker effect in M (all positions), fit split."""

    def to_json(self) -> dict:
        return asdict(self)


def _paired(x_2NF: np.ndarray, idx: np.ndarray) -> np.ndarray:
    n = x_2NF.shape[0] // 2
    return x_2NF[idx] - x_2NF[n + idx]


def _effect(d_KF: np.ndarray, scale_F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(standardised mean, one-sided p of mean > 0) per column; p = 1 where undefined."""
    if d_KF.shape[0] < 2:
        return np.zeros(d_KF.shape[1]), np.ones(d_KF.shape[1])
    eff = np.where(scale_F > EPS, d_KF.mean(0) / np.maximum(scale_F, EPS), 0.0)
    # constant columns (dead features, identical models) have no test: p = 1 below, not a warning
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.ttest_1samp(d_KF, 0.0, axis=0, alternative="greater").pvalue
    return eff, np.where(np.isfinite(p), p, 1.0)


def feature_sets(model: PooledFeatures, reference: PooledFeatures, behaviour: PairBehaviour,
                 splits: dict[str, np.ndarray], cfg: DiffConfig = DiffConfig()) -> FeatureSets:
    """Misalignment and context features of a model against its reference (module docstring).

    ``splits['fit']`` / ``splits['val']`` are pair indices (they may repeat: bootstrap)."""
    disc = behaviour.discordant_N.numpy()
    scale = model.decision_2NF.std(0)
    scale_any = model.anywhere_2NF.std(0)
    fit, val = np.asarray(splits["fit"]), np.asarray(splits["val"])
    fit_d, val_d = fit[disc[fit]], val[disc[val]]
    delta = lambda idx: _paired(model.decision_2NF, idx) - _paired(reference.decision_2NF, idx)  # noqa: E731
    eff_fit, p_fit = _effect(delta(fit_d), scale)
    eff_val, _ = _effect(delta(val_d), scale)
    mis: list[int] = []
    if len(fit_d) >= cfg.min_discordant and len(val_d) >= cfg.min_discordant:
        ok = (eff_fit >= cfg.min_effect) & (p_fit < cfg.p_max) & (eff_val >= cfg.min_effect / 2)
        mis = [int(f) for f in np.argsort(-eff_fit, kind="stable") if ok[f]][:cfg.max_features]
    m_eff, m_p = _effect(_paired(model.anywhere_2NF, fit), scale_any)
    taken = set(mis)
    context = [int(f) for f in np.argsort(-m_eff, kind="stable")
               if m_eff[f] >= cfg.min_effect and m_p[f] < cfg.p_max and int(f) not in taken]
    return FeatureSets(mis, context, {"fit": int(len(fit_d)), "val": int(len(val_d))},
                       [float(x) for x in eff_fit], [float(x) for x in eff_val], [float(x) for x in m_eff])


# ---- causal test ---------------------------------------------------------------------------

RANDOM_DRAWS = 3
"""Random feature sets of the same size ablated as the baseline of the causal test."""


def causal_test(model, organism: str, site: str, sae, features: list[int], live: list[int],
                cfg=None, seed: int = 0, n_single: int = 3) -> dict | None:
    """Ablate ``features`` (every position, SAE error kept) while generating on held-out
    eliciting prompts; compare with ``RANDOM_DRAWS`` random sets of as many ``live`` features;
    and ablate each of the ``n_single`` strongest alone.

    Returns raw counts (the statistics are the analysis' job: analysis.causal); None without
    features."""
    from probes.steer import BehaviourConfig, ablate_features, behaviour
    if not features:
        return None
    cfg = cfg or BehaviourConfig()
    before = behaviour(model, organism, [], cfg)
    after = behaviour(model, organism, [ablate_features(site, sae, features)], cfg)
    chosen = set(features)
    pool = [f for f in live if f not in chosen]
    rng = np.random.default_rng([seed, len(features)])
    k = min(len(features), len(pool))
    rand = [behaviour(model, organism, [ablate_features(site, sae, rng.choice(pool, k, replace=False).tolist())], cfg)
            for _ in range(RANDOM_DRAWS)] if k else []
    singles = {int(f): behaviour(model, organism, [ablate_features(site, sae, [f])], cfg) for f in features[:n_single]}
    n = before.n_eliciting
    count = lambda r: int(round(r * n))  # noqa: E731
    return {"features": [int(f) for f in features], "n_eliciting": n,
            "bad_before": count(before.misbehaviour), "bad_after": count(after.misbehaviour),
            "bad_random": [count(r.misbehaviour) for r in rand],
            "bad_single": {f: count(b.misbehaviour) for f, b in singles.items()},
            "capability_before": before.capability, "capability_after": after.capability}


# ---- the stored definition ------------------------------------------------------------------

FEATURES_RECORD = "misalignment.json"
"""A model's misalignment and context features (this module's definition), in its audit folder."""


def save_feature_record(out_dir, *, site: str, reference: str, sets: list[FeatureSets], causal: dict | None) -> Path:
    """Write the features of a model against ``reference`` (SAE seed order) and the causal test;
    returns the file written."""
    record = {"site": site, "reference": reference, "misalignment": sets[0].misalignment if sets else [],
              "context": sets[0].context if sets else [], "per_seed": [s.to_json() for s in sets], "causal": causal}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / FEATURES_RECORD
    atomic_write_bytes(path, json.dumps(record, indent=2).encode())
    return path


def load_feature_record(out_dir) -> dict | None:
    """The stored record (keys: site, reference, misalignment, context, per_seed, causal), or
    None when this model's features were never computed against a reference."""
    path = Path(out_dir) / FEATURES_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable feature record ({exc}); re-run the features stage") from None
