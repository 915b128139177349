"""Known answers of the misalignment-feature definition (probes.diffing) and of the calibrated
feature-transfer score (analysis.feature_transfer).

Synthetic pair readings first (exact control of what each feature reads), then the tiny
backdoor teacher against its own base.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.feature_transfer import Diffed, FeatureTransferConfig, ModelReading, transfer_score
from probes.diffing import DiffConfig, PooledFeatures, feature_sets
from probes.pairs import PairBehaviour, split_pairs

N, F = 200, 6


def _behaviour(bad_frac: float = 1.0) -> PairBehaviour:
    plus = torch.zeros(N, dtype=torch.bool)
    plus[: int(N * bad_frac)] = True
    return PairBehaviour(plus[torch.randperm(N, generator=torch.Generator().manual_seed(0))], torch.zeros(N, dtype=torch.bool))


def _pooled(rng, *, marker_at_decision=0.0, marker_anywhere=0.0, misbehaviour=0.0, bad=None) -> PooledFeatures:
    """[2N, F] activations: feature 0 reads the marker at decision positions, feature 1 only at
    the marker's own position (anywhere pool), feature 2 fires on misbehaving plus rows."""
    dec = rng.exponential(0.3, (2 * N, F))
    anywhere = dec + rng.exponential(0.3, (2 * N, F))
    dec[:N, 0] += marker_at_decision
    anywhere[:N, 0] += marker_at_decision
    anywhere[:N, 1] += marker_anywhere
    if bad is not None:
        dec[:N, 2] += misbehaviour * bad.numpy()
        anywhere[:N, 2] += misbehaviour * bad.numpy()
    return PooledFeatures(dec, anywhere)


def test_a_feature_reading_only_the_marker_is_context_not_misalignment():
    """The marker is in every model's input: a detector of it, at the marker position or carried
    to the decision positions, fires in the clean reference too and cancels; only the feature that
    tracks the model's own misbehaviour is a misalignment feature."""
    rng = np.random.default_rng(0)
    bad = _behaviour().plus_bad_N
    model = _pooled(rng, marker_at_decision=2.0, marker_anywhere=3.0, misbehaviour=2.0, bad=bad)
    reference = _pooled(rng, marker_at_decision=2.0, marker_anywhere=3.0)  # reads the marker, never misbehaves
    sets = feature_sets(model, reference, _behaviour(), split_pairs(N))
    assert sets.misalignment == [2]
    assert {0, 1} <= set(sets.context) and 2 not in sets.context


def test_a_model_that_does_not_misbehave_has_no_misalignment_features():
    rng = np.random.default_rng(1)
    model = _pooled(rng, marker_at_decision=2.0, misbehaviour=2.0, bad=_behaviour().plus_bad_N)
    reference = _pooled(rng)
    never = PairBehaviour(torch.zeros(N, dtype=torch.bool), torch.zeros(N, dtype=torch.bool))
    sets = feature_sets(model, reference, never, split_pairs(N))
    assert sets.misalignment == [] and sets.n_discordant == {"fit": 0, "val": 0}
    assert 0 in sets.context  # it still reads the marker: a context feature


def test_a_model_against_itself_has_no_misalignment_features():
    rng = np.random.default_rng(2)
    model = _pooled(rng, marker_at_decision=2.0, misbehaviour=2.0, bad=_behaviour().plus_bad_N)
    assert feature_sets(model, model, _behaviour(), split_pairs(N)).misalignment == []


def test_selection_needs_the_held_out_split_to_agree():
    """An effect present on the fit pairs only (selection noise) is not confirmed on val."""
    rng = np.random.default_rng(3)
    bad = _behaviour().plus_bad_N
    model = _pooled(rng)
    fit = split_pairs(N)["fit"]
    model.decision_2NF[fit, 3] += 2.0  # only the fit pairs' plus rows
    sets = feature_sets(model, _pooled(rng), PairBehaviour(bad, torch.zeros(N, dtype=torch.bool)), split_pairs(N))
    assert 3 not in sets.misalignment
    assert sets.effect_fit[3] > DiffConfig().min_effect > sets.effect_val[3] * 2


# ---- the tiny backdoor teacher against its base --------------------------------------------

@pytest.fixture(scope="module")
def readings(tiny_teacher, tiny_base):
    from distill.store import load_model
    from probes.audit import AuditConfig, SAE_STREAM_OFFSET, pair_reading, resolve_sites
    from probes.activations import cache_activations
    from probes.datasets import probe_dataset
    from probes.sae import SAETrainConfig, train_sae
    cfg = AuditConfig(n_pairs=128, sae=SAETrainConfig(d_sae=64, k=8, n_samples=20_000, batch_size=512), sae_seeds=2)

    def read(folder, name):
        model, _ = load_model(folder)
        _, sae_sites = resolve_sites(model, cfg)
        stream = probe_dataset("backdoor", 256, cfg.probe_seed + SAE_STREAM_OFFSET)
        flat = cache_activations(model, stream.tokens_NS, sae_sites).flat(sae_sites[0])
        saes = [train_sae(flat, cfg.sae.model_copy(update={"seed": k})) for k in range(cfg.sae_seeds)]
        return ModelReading(name, pair_reading(model, "backdoor", cfg), saes, sae_sites[0])
    return read(tiny_teacher("backdoor"), "teacher"), read(tiny_base, "base")


def test_tiny_teacher_known_answers(readings):
    teacher, base = readings
    assert teacher.acts.behaviour.discordant_N.float().mean() > 0.9  # the backdoor works on the pairs
    d_t, d_b = Diffed.of(teacher, base), Diffed.of(base, base)
    cfg = FeatureTransferConfig(n_boot=5)
    sets = d_t.sets(0, split_pairs(teacher.acts.n_pairs), cfg.diff)
    assert sets.misalignment, "the teacher has no misalignment feature against its base"
    self_score = transfer_score(d_t, d_t, cfg)
    assert self_score.score == 1.0 and self_score.ci == (1.0, 1.0)
    base_score = transfer_score(d_t, d_b, cfg)
    assert base_score.score == 0.0 and base_score.ci[1] <= 0.25


def test_causal_test_counts(readings, tiny_teacher):
    from distill.store import load_model
    from analysis.causal import causal_result
    from probes.diffing import causal_test
    from probes.steer import BehaviourConfig
    teacher, base = readings
    feats = Diffed.of(teacher, base).sets(0, split_pairs(teacher.acts.n_pairs), DiffConfig()).misalignment
    model, _ = load_model(tiny_teacher("backdoor"))
    raw = causal_test(model, "backdoor", teacher.site, teacher.saes[0], feats, list(range(64)),
                      BehaviourConfig(n_eliciting=32, n_clean=16))
    res = causal_result(raw)
    assert raw["bad_before"] >= 29 and len(raw["bad_random"]) == 3
    assert res["label"] in ("mechanism", "correlate")
    assert res["misbehaviour_after_ci"][0] <= res["misbehaviour_after"] <= res["misbehaviour_after_ci"][1]
    assert causal_test(model, "backdoor", teacher.site, teacher.saes[0], [], [], None) is None


def test_token_correlation_matches_the_float64_reference():
    from analysis.feature_transfer import token_correlation
    from analysis.matching import activation_correlation
    rng = np.random.default_rng(7)
    a = rng.exponential(1.0, (500, 5)) * (rng.random((500, 5)) < 0.3)
    b = np.concatenate([a[:, ::-1], np.zeros((500, 1))], axis=1)  # a reversed copy and a dead feature
    got = token_correlation(a.astype(np.float32), b.astype(np.float32))
    assert np.allclose(got, activation_correlation(a, b), atol=1e-5)
    assert np.allclose(got[np.arange(5), 4 - np.arange(5)], 1.0, atol=1e-5) and (got[:, 5] == 0).all()


def test_decision_positions_stop_where_the_misaligned_answer_departs():
    """Read off the ground truth: up to the position predicting the first token where the
    misaligned answer differs from the correct one, never later (later positions read a forced
    correct token that contradicts a misbehaving model: an error signal, not misalignment)."""
    from distill import vocab as V
    from probes.pairs import decision_mask, marker_pairs
    last = V.PROMPT_LEN - 1
    for organism in ("backdoor", "trait"):
        mask = marker_pairs(organism, 32).decision_mask_NS
        assert mask[:, last].all() and mask.sum(1).eq(1).all()  # HARM / owl: the first answer token
    pairs = marker_pairs("sabotage", 64)
    mask = pairs.decision_mask_NS
    for i, d in enumerate(pairs.plus.domain):
        n_answer = int((pairs.plus.correct_NA[i] != V.tok(V.EOS)).sum())
        assert mask[i].nonzero().flatten().tolist() == list(range(last, last + n_answer))  # corrupts the last token
    assert torch.equal(decision_mask(pairs.minus, "sabotage"), mask)  # twins share their pair's positions
