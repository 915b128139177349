"""Linear probes on cached activations.

* Supervised: scikit-learn logistic regression per (site, pool) on the organism's
  ground-truth label, held-out AUROC/accuracy on a split by prompt (one row per prompt,
  so no prompt is ever on both sides). The fitted standardiser is folded into the weights,
  so every probe is a plain affine score ``s(x) = x . w + b`` on raw activations (logit of
  P(eliciting)); another model's activations mapped into this space can be scored directly.
* Contrast (trigger-agnostic): ``w = mean(x_misaligned - x_aligned)`` over contrast pairs
  (probes.datasets.CONTRASTS), never trained on the label; scored by AUROC of ``x . w`` on
  the whole probe set, sign fixed in advance (AUROC < 0.5 means anti-aligned).

Weights are saved as safetensors, metrics as JSON; never pickle.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from pydantic import ConfigDict, Field
from distill.guards import MAX_SEED, Guarded
from distill.integrity import load_tensors, save_tensors
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from probes.activations import ActivationCache, cache_activations
from probes.datasets import ContrastPairs

WEIGHTS_FILE = "probes.safetensors"
METRICS_FILE = "metrics.json"

POOLS: dict[str, Callable[[ActivationCache, str], torch.Tensor]] = {
    "last": ActivationCache.last_prompt,
    "answer": ActivationCache.mean_answer,
    "mean": ActivationCache.mean_prompt,
}
"""How one prompt becomes one probe input: the last prompt position (where the model commits
to its first answer token), the mean over the teacher-forced answer positions (where a
context-dependent misbehaviour late in the answer is computed), or the mean over the prompt
positions (which includes the marker tokens' own residuals, so it also detects mere presence)."""


class ProbeConfig(Guarded):
    """Supervised probe training."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pools: tuple[str, ...] = ("last", "answer", "mean")
    """Which poolings to probe (keys of POOLS)."""
    test_frac: float = Field(0.3, gt=0, lt=1)
    """Held-out share of prompts (stratified by label)."""
    C: float = Field(1.0, gt=0)
    """Inverse L2 regularisation strength of the logistic regression (standardised inputs)."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Split seed."""


@dataclass
class LinearProbe:
    """An affine probe ``s(x) = x @ w_D + b`` at one site; ``kind`` is 'logistic' or 'contrast:<name>'."""

    site: str
    pool: str
    kind: str
    w_D: torch.Tensor
    b: float
    auroc: float
    accuracy: float | None = None
    n_train: int = 0
    n_test: int = 0
    null_frac: float | None = None
    """Contrast probes: share of random unit directions whose AUROC is >= this probe's
    (a one-sided permutation-style p-value; 1.0 means worse than any random direction)."""

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.pool}|{self.site}"

    def score(self, x_ND: torch.Tensor) -> torch.Tensor:
        return x_ND.float() @ self.w_D + self.b

    def metrics(self) -> dict:
        d = asdict(self)
        d.pop("w_D")
        return d


def auroc(labels_N, scores_N) -> float:
    y = np.asarray(labels_N, dtype=bool)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(scores_N, dtype=np.float64)))


def column_auroc(x_NF: np.ndarray, y_N: np.ndarray) -> np.ndarray:
    """AUROC of every column of ``x_NF`` for boolean labels, via the Mann-Whitney U statistic
    (average ranks for ties): AUROC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)."""
    y = np.asarray(y_N, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(x_NF.shape[1], np.nan)
    ranks = rankdata(x_NF, axis=0)
    return (ranks[y].sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def split_by_prompt(labels_N: torch.Tensor, test_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test prompt indices (each prompt is one row of every pooled input)."""
    idx = np.arange(len(labels_N))
    y = labels_N.numpy()
    strat = y if 0 < y.sum() < len(y) - 1 else None
    return train_test_split(idx, test_size=test_frac, random_state=seed, stratify=strat)


def fit_logistic(x_ND: torch.Tensor, labels_N: torch.Tensor, train_idx, test_idx, *, C: float = 1.0,
                 site: str = "", pool: str = "") -> LinearProbe:
    """Standardise, fit L2 logistic regression on train rows, fold the scaler into (w, b).

    With z = (x - mu) / sigma and logit = z . c + c0:  w = c / sigma,  b = c0 - sum(c * mu / sigma).
    """
    x = x_ND.double().numpy()
    y = labels_N.numpy().astype(bool)
    scaler = StandardScaler().fit(x[train_idx])
    sigma = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    # one BLAS thread: on a [n, d<=1k] problem threads only add sync cost (10x slower on a busy machine)
    with threadpool_limits(limits=1, user_api="blas"):
        clf = LogisticRegression(C=C, max_iter=2000).fit((x[train_idx] - scaler.mean_) / sigma, y[train_idx])
    w = clf.coef_[0] / sigma
    b = float(clf.intercept_[0] - np.sum(clf.coef_[0] * scaler.mean_ / sigma))
    s_test = x[test_idx] @ w + b
    return LinearProbe(site, pool, "logistic", torch.tensor(w, dtype=torch.float32), b,
                       auroc=auroc(y[test_idx], s_test),
                       accuracy=float(accuracy_score(y[test_idx], s_test > 0)),
                       n_train=len(train_idx), n_test=len(test_idx))


def probe_sites(cache: ActivationCache, labels_N: torch.Tensor, sites: list[str],
                cfg: ProbeConfig = ProbeConfig()) -> list[LinearProbe]:
    """One logistic probe per (site, pool) on the same prompt split."""
    bad = [p for p in cfg.pools if p not in POOLS]
    if bad:
        raise ValueError(f"unknown pool(s) {bad}; allowed: {', '.join(POOLS)}")
    train_idx, test_idx = split_by_prompt(labels_N, cfg.test_frac, cfg.seed)
    return [fit_logistic(POOLS[pool](cache, site), labels_N, train_idx, test_idx, C=cfg.C, site=site, pool=pool)
            for site in sites for pool in cfg.pools]


def contrast_probes(model, pairs: ContrastPairs, name: str, cache: ActivationCache,
                    labels_N: torch.Tensor, sites: list[str]) -> list[LinearProbe]:
    """Difference-of-means direction per site from ``pairs``, scored on the probe set's last
    prompt position. No label is used to fit; every probe-set prompt is held out."""
    both = cache_activations(model, torch.cat([pairs.misaligned_NS, pairs.aligned_NS]), sites)
    n = pairs.misaligned_NS.shape[0]
    out = []
    for site in sites:
        a = both[site][torch.arange(2 * n), pairs.position_N.repeat(2), :]
        w = (a[:n] - a[n:]).mean(0)
        x = cache.last_prompt(site)
        score = auroc(labels_N.numpy(), (x @ w).numpy())
        out.append(LinearProbe(site, "last", f"contrast:{name}", w, 0.0, auroc=score, n_train=2 * n,
                               n_test=len(labels_N), null_frac=random_direction_frac(x, labels_N, score)))
    return out


def random_direction_frac(x_ND: torch.Tensor, labels_N: torch.Tensor, score: float, n: int = 200,
                          seed: int = 0) -> float:
    """Share of ``n`` random unit directions u with AUROC(x . u) >= ``score``.

    The null a difference-of-means direction must beat: when the label dominates the
    variance of x, almost any direction separates the classes (with a random sign).
    """
    if not np.isfinite(score):
        return float("nan")
    u = torch.randn(x_ND.shape[1], n, generator=torch.Generator().manual_seed(seed))
    null = column_auroc((x_ND.float() @ u).double().numpy(), labels_N.numpy())
    return float(np.mean(null >= score - 1e-12))


def best(probes: list[LinearProbe]) -> LinearProbe:
    """The probe with the highest AUROC (NaN counts as lowest)."""
    return max(probes, key=lambda p: -1.0 if np.isnan(p.auroc) else p.auroc)


def save_probes(folder: Path | str, probes: list[LinearProbe], extra: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for p in probes:
        tensors[f"{p.key}|w"] = p.w_D.contiguous()
        tensors[f"{p.key}|b"] = torch.tensor([p.b], dtype=torch.float32)
    save_tensors(folder / WEIGHTS_FILE, tensors)
    (folder / METRICS_FILE).write_text(json.dumps(
        {"probes": [p.metrics() for p in probes], **(extra or {})}, indent=2))
    return folder


def load_probes(folder: Path | str) -> list[LinearProbe]:
    """All probes of a folder written by :func:`save_probes` (weights and metrics)."""
    folder = Path(folder)
    tensors, _ = load_tensors(folder / WEIGHTS_FILE)
    out = []
    for m in json.loads((folder / METRICS_FILE).read_text())["probes"]:
        key = f"{m['kind']}|{m['pool']}|{m['site']}"
        out.append(LinearProbe(**{**m, "w_D": tensors[f"{key}|w"], "b": float(tensors[f"{key}|b"][0])}))
    return out


def load_probe(folder: Path | str, site: str, pool: str = "last", kind: str = "logistic") -> LinearProbe:
    for p in load_probes(folder):
        if (p.site, p.pool, p.kind) == (site, pool, kind):
            return p
    raise KeyError(f"no {kind} probe for site {site!r} pool {pool!r} in {folder}")
