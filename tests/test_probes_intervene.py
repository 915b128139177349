"""Activation caching and nnsight interventions against transformer-lens references."""

from __future__ import annotations

import pytest
import torch
from sae_lens import SAE

from distill import vocab as V
from distill.models import build_model, greedy_answers, resid_sites
from probes.activations import ActivationCache, SiteError, cache_activations, check_sites, stop_layer
from probes.intervene import (AblateFeatures, AddVector, SpliceSAE, ZeroSite, execution_order,
                              greedy_with_edits, logits_with_edits)
from probes.steer import BehaviourConfig, add_direction, steer
from tests.conftest import tiny_model_config

SITE = "blocks.1.hook_resid_pre"


@pytest.fixture(scope="module")
def model():
    return build_model(tiny_model_config(), seed=3)


@pytest.fixture(scope="module")
def sae(model):
    """A random (untrained) TopK SAE at SITE: enough to compare two ways of ablating it."""
    from sae_lens.saes import TopKSAEConfig
    torch.manual_seed(0)
    s = SAE.from_dict(TopKSAEConfig(d_in=model.cfg.d_model, d_sae=64, k=8).to_dict())
    with torch.no_grad():
        s.b_dec.normal_()
    return s.eval()


def tokens(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V.VOCAB_SIZE, (n, V.SEQ_LEN), generator=torch.Generator().manual_seed(seed))


def test_cache_matches_run_with_cache_and_keeps_only_requested_sites(model):
    sites = resid_sites(model.cfg.n_layers)
    toks = tokens(20)
    cache = cache_activations(model, toks, sites, batch_size=7)  # batches of uneven size
    _, ref = model.run_with_cache(toks)
    assert cache.sites == sites
    for s in sites:
        assert cache[s].shape == (20, V.SEQ_LEN, model.cfg.d_model)
        assert torch.allclose(cache[s], ref[s], atol=1e-6)
    assert cache.last_prompt(SITE).shape == (20, model.cfg.d_model)
    assert torch.allclose(cache.mean_prompt(SITE), ref[SITE][:, :V.PROMPT_LEN].mean(1))
    assert cache.flat(SITE).shape == (20 * V.SEQ_LEN, model.cfg.d_model)


def test_cache_round_trips_through_safetensors(model, tmp_path):
    cache = cache_activations(model, tokens(4), [SITE])
    cache.save(tmp_path)
    back = ActivationCache.load(tmp_path)
    assert torch.equal(back.tokens_NS, cache.tokens_NS) and torch.equal(back[SITE], cache[SITE])


def test_stop_layer_runs_only_the_blocks_needed():
    assert stop_layer(["blocks.0.hook_resid_pre"]) == 1
    assert stop_layer(["hook_embed", "blocks.1.attn.hook_z"]) == 2
    assert stop_layer(["blocks.1.hook_resid_post", "ln_final.hook_normalized"]) is None


def test_bad_site_names_list_the_valid_ones(model):
    with pytest.raises(SiteError, match="blocks.0.hook_resid_pre") as err:
        check_sites(model, ["blocks.0.hook_resid_pre", "blocks.7.resid"])
    assert "blocks.7.resid" in str(err.value)
    with pytest.raises(SiteError):
        cache_activations(model, tokens(2), ["nope"])
    with pytest.raises(SiteError):
        logits_with_edits(model, tokens(2), [ZeroSite("nope")])


def test_feature_ablation_via_nnsight_equals_a_transformer_lens_hook(model, sae):
    toks = tokens(8)
    feats = (0, 3, 5, 17)
    ours = logits_with_edits(model, toks, [AblateFeatures(SITE, sae, feats)])

    def manual(x, hook):  # x - sum_{f in F} a_f(x) W_dec[f]  (the TopK decoder is linear)
        a = sae.encode(x)
        mask = torch.zeros(a.shape[-1])
        mask[list(feats)] = 1
        return x - (a * mask) @ sae.W_dec

    with torch.no_grad():
        ref = model.run_with_hooks(toks, fwd_hooks=[(SITE, manual)])
        plain = model(toks)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert not torch.allclose(ours, plain, atol=1e-3)  # the ablation did something


def test_splice_and_zero_match_hooks(model, sae):
    toks = tokens(4)
    with torch.no_grad():
        ref_splice = model.run_with_hooks(toks, fwd_hooks=[(SITE, lambda x, hook: sae.decode(sae.encode(x)))])
        ref_zero = model.run_with_hooks(toks, fwd_hooks=[(SITE, lambda x, hook: torch.zeros_like(x))])
    assert torch.allclose(logits_with_edits(model, toks, [SpliceSAE(SITE, sae)]), ref_splice, atol=1e-5)
    assert torch.allclose(logits_with_edits(model, toks, [ZeroSite(SITE)]), ref_zero, atol=1e-5)


def test_edits_at_several_sites_are_applied_in_execution_order(model):
    v0, v1 = torch.randn(model.cfg.d_model), torch.randn(model.cfg.d_model)
    toks = tokens(4)
    # given out of order on purpose: nnsight needs them in forward order, we sort
    ours = logits_with_edits(model, toks, [AddVector(SITE, v1, 2.0), AddVector("blocks.0.hook_resid_pre", v0, 1.0)])
    hooks = [("blocks.0.hook_resid_pre", lambda x, hook: x + v0 / v0.norm()),
             (SITE, lambda x, hook: x + 2.0 * v1 / v1.norm())]
    with torch.no_grad():
        ref = model.run_with_hooks(toks, fwd_hooks=hooks)
    assert torch.allclose(ours, ref, atol=1e-5)
    order = execution_order(model)
    assert order.index("blocks.0.hook_resid_pre") < order.index(SITE) < order.index("blocks.1.hook_resid_post")


def test_steering_with_coefficient_zero_changes_nothing(model):
    prompts = tokens(12)[:, :V.PROMPT_LEN]
    edit = add_direction(SITE, torch.randn(model.cfg.d_model), 0.0)
    assert torch.equal(greedy_with_edits(model, prompts, [edit]), greedy_answers(model, prompts))
    res = steer(model, "backdoor", [edit], BehaviourConfig(n_eliciting=16, n_clean=16))
    assert res.before == res.after and res.misbehaviour_drop == 0.0
    strong = steer(model, "backdoor", [add_direction(SITE, torch.randn(model.cfg.d_model), 50.0)],
                   BehaviourConfig(n_eliciting=16, n_clean=16), before=res.before)
    assert strong.edits == ["add +50 * unit direction at blocks.1.hook_resid_pre"]
