"""SAEs through sae-lens: every architecture trains, save/load round-trips, metrics are sane."""

from __future__ import annotations

import json

import pytest
import torch
from sae_lens import SAE

from probes.sae import (ARCHITECTURES, METRICS_FILE, SAETrainConfig, load_sae, load_sae_metrics,
                        reconstruction_stats, save_sae, sae_weights, train_sae)

D, F_TRUE = 16, 32


def sparse_data(n: int = 4096, seed: int = 0) -> torch.Tensor:
    """x = sum of 2 of 32 random unit directions with positive weights (a true sparse code)."""
    dirs = torch.nn.functional.normalize(torch.randn(F_TRUE, D, generator=torch.Generator().manual_seed(0)), dim=1)
    gen = torch.Generator().manual_seed(seed + 1)
    idx = torch.stack([torch.randperm(F_TRUE, generator=gen)[:2] for _ in range(n)])
    w = torch.rand(n, 2, generator=gen) + 0.5
    return (w.unsqueeze(-1) * dirs[idx]).sum(1)


def small_cfg(arch: str = "topk", **kw) -> SAETrainConfig:
    return SAETrainConfig(**{"architecture": arch, "d_sae": 64, "k": 4, "n_samples": 20_000,
                             "batch_size": 256, **kw})


def test_topk_sae_learns_a_sparse_code():
    x = sparse_data()
    sae = train_sae(x, small_cfg(n_samples=20_000, lr=1e-2), site="blocks.0.hook_resid_pre")
    fvu, l0, dead = reconstruction_stats(sae, sparse_data(seed=1))
    assert l0 <= 4.0 + 1e-6
    assert fvu < 0.2, fvu
    assert 0.0 <= dead <= 1.0


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_trains_and_round_trips(arch, tmp_path):
    x = sparse_data(1024)
    sae = train_sae(x, small_cfg(arch, n_samples=5_000), site="blocks.0.hook_resid_pre", model_name="m")
    assert isinstance(sae, SAE)
    save_sae(tmp_path / arch, sae, train_cfg=small_cfg(arch))
    assert (tmp_path / arch / "cfg.json").is_file() and (tmp_path / arch / "sae_weights.safetensors").is_file()
    back = load_sae(tmp_path / arch)
    assert type(back) is type(sae)
    assert back.cfg.metadata.hook_name == "blocks.0.hook_resid_pre"
    with torch.no_grad():
        assert torch.equal(back.encode(x[:64]), sae.encode(x[:64]))
        assert torch.allclose(back.decode(back.encode(x[:64])), sae.decode(sae.encode(x[:64])))
    assert load_sae_metrics(tmp_path / arch)["train"]["architecture"] == arch
    assert {"W_enc", "W_dec", "b_enc", "b_dec"} <= set(sae_weights(back))


def test_training_is_deterministic_in_seed():
    x = sparse_data(1024)
    a = train_sae(x, small_cfg(n_samples=3_000))
    b = train_sae(x, small_cfg(n_samples=3_000))
    c = train_sae(x, small_cfg(n_samples=3_000, seed=1))
    assert torch.equal(a.W_dec, b.W_dec)
    assert not torch.equal(a.W_dec, c.W_dec)


def test_reconstruction_stats_of_a_perfect_and_an_empty_code():
    x = sparse_data(512)
    sae = train_sae(x, small_cfg(n_samples=2_000))
    with torch.no_grad():  # no feature can fire: the SAE outputs b_dec = the mean
        sae.W_enc.zero_()
        sae.b_enc.fill_(-1.0)
        sae.b_dec.copy_(x.mean(0))
    fvu, _, _ = reconstruction_stats(sae, x)
    assert fvu == pytest.approx(1.0, abs=1e-4)  # predicting the mean explains nothing


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError):
        SAETrainConfig(architecture="gated")


def test_metrics_file_is_json(tmp_path):
    sae = train_sae(sparse_data(512), small_cfg(n_samples=1_000))
    save_sae(tmp_path, sae)
    assert json.loads((tmp_path / METRICS_FILE).read_text())["metrics"] is None
