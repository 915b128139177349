"""Linear probes on synthetic activations: a planted direction is recovered, shuffled labels give chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from distill import vocab as V
from probes.activations import ActivationCache
from probes.features import contrastive_scores
from probes.linear import (ProbeConfig, best, column_auroc, load_probe, load_probes, probe_sites,
                           random_direction_frac, save_probes)

D = 16
SITE = "blocks.0.hook_resid_pre"


def planted_cache(n: int = 600, seed: int = 0) -> tuple[ActivationCache, torch.Tensor, torch.Tensor]:
    """Gaussian activations; at the last prompt position, eliciting rows are shifted along u."""
    gen = torch.Generator().manual_seed(seed)
    acts = torch.randn(n, V.SEQ_LEN, D, generator=gen)
    labels = torch.arange(n) % 2 == 0
    u = torch.randn(D, generator=gen)
    u = u / u.norm()
    acts[labels, V.PROMPT_LEN - 1] += 3.0 * u
    tokens = torch.zeros(n, V.SEQ_LEN, dtype=torch.long)
    return ActivationCache(tokens, {SITE: acts}), labels, u


def test_planted_direction_is_recovered():
    cache, labels, u = planted_cache()
    probes = probe_sites(cache, labels, [SITE], ProbeConfig(pools=("last", "mean")))
    last = next(p for p in probes if p.pool == "last")
    assert last.auroc > 0.99 and last.accuracy > 0.9
    cos = float(last.w_D @ u / last.w_D.norm())
    assert cos > 0.9, cos
    assert best(probes) is last
    # the shift lives at one position: averaging over 14 prompt positions dilutes it
    mean = next(p for p in probes if p.pool == "mean")
    assert mean.auroc < last.auroc


def test_shuffled_labels_give_chance():
    cache, labels, _ = planted_cache(n=1000)
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]
    probe = probe_sites(cache, shuffled, [SITE], ProbeConfig(pools=("last",)))[0]
    assert abs(probe.auroc - 0.5) < 0.1, probe.auroc


def test_probe_score_matches_held_out_auroc_on_raw_activations():
    """The scaler is folded into (w, b): scoring raw activations reproduces the probe's decisions."""
    cache, labels, _ = planted_cache()
    p = probe_sites(cache, labels, [SITE], ProbeConfig(pools=("last",)))[0]
    scores = p.score(cache.last_prompt(SITE))
    assert roc_auc_score(labels.numpy(), scores.numpy()) > 0.99
    assert ((scores > 0) == labels).float().mean() > 0.9


def test_save_load_round_trip(tmp_path):
    cache, labels, _ = planted_cache()
    probes = probe_sites(cache, labels, [SITE])
    save_probes(tmp_path, probes, {"organism": "backdoor"})
    back = load_probes(tmp_path)
    assert [(p.site, p.pool, p.kind) for p in back] == [(p.site, p.pool, p.kind) for p in probes]
    for a, b in zip(probes, back):
        assert torch.equal(a.w_D, b.w_D) and a.b == pytest.approx(b.b) and a.auroc == b.auroc
    assert load_probe(tmp_path, SITE, "mean").pool == "mean"
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.pt"))
    with pytest.raises(KeyError):
        load_probe(tmp_path, "blocks.9.hook_resid_pre")


def test_unknown_pool_is_rejected():
    cache, labels, _ = planted_cache(n=50)
    with pytest.raises(ValueError, match="allowed: last, answer, mean"):
        probe_sites(cache, labels, [SITE], ProbeConfig(pools=("max",)))


def test_column_auroc_matches_sklearn_and_ranks_features():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.5
    x = rng.random((300, 5))
    x[:, 3] += 2.0 * y          # feature 3 fires on eliciting prompts
    x[:, 1] = np.where(y, 0.0, x[:, 1])  # feature 1 is anti-aligned (ties at 0)
    ours = column_auroc(x, y)
    ref = [roc_auc_score(y, x[:, f]) for f in range(5)]
    assert np.allclose(ours, ref)
    scores = contrastive_scores(torch.tensor(x), torch.tensor(y))
    assert scores[0].feature == 3 and scores[0].mean_diff > 0


def test_random_direction_null():
    """A direction along the planted shift beats every random one; its negation beats none."""
    cache, labels, u = planted_cache()
    x = cache.last_prompt(SITE)
    good = roc_auc_score(labels.numpy(), (x @ u).numpy())
    assert random_direction_frac(x, labels, good) < 0.05
    assert random_direction_frac(x, labels, 1 - good) > 0.95
