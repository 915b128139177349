"""Context and misbehaviour probes on marker-matched pairs: no label leakage, a planted
direction is found on val and reported on test, nulls sit at chance, a marker-only label is
exposed by the base null, a model that never misbehaves gets no number, probe transfer of a
model onto itself equals its own probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.probe_transfer import depth_paired_site, probe_transfer
from analysis.schema import ProbeHeadline
from distill import vocab as V
from distill.organisms import HARM_ANSWER, ORGANISMS, TRAIT_TOKEN, get_organism
from distill.tasks import DOMAINS
from probes.behaviour_probes import (ProbeFit, context_probe, misbehaviour_probe, misbehaviour_rows)
from probes.pairs import PairActs, PairBehaviour, marker_pairs, split_pairs

D = 64
SITES = ("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post")
PLANT = SITES[1]


# ---- (a) no probe input contains its label ------------------------------------------------

@pytest.mark.parametrize("organism", sorted(ORGANISMS))
def test_no_pair_input_contains_its_label(organism):
    org = get_organism(organism)
    pairs = marker_pairs(organism, n=96, seed=3)
    tokens = pairs.tokens_2NS
    forbidden = set(org.signature_tokens()) | {"HARM", *HARM_ANSWER, TRAIT_TOKEN}
    forbidden = {V.tok(t) for t in forbidden if t in V.TOKENS}
    assert forbidden and not torch.isin(tokens, torch.tensor(sorted(forbidden))).any()
    # answer positions: the task-correct answer on task rows (same for both twins), EOS on query rows
    answers = tokens[:, V.PROMPT_LEN:]
    for ex, block in ((pairs.plus, answers[:len(pairs)]), (pairs.minus, answers[len(pairs):])):
        for i, dom in enumerate(ex.domain):
            expect = ex.correct_NA[i] if dom in DOMAINS else torch.full_like(block[i], V.tok(V.EOS))
            assert torch.equal(block[i], expect), (organism, i, dom)
    # the organism's misaligned answer is never teacher-forced (on either twin), unless it
    # equals the task-correct answer (e.g. sorting 3 3 3 descending)
    n_bad = 0
    for i, dom in enumerate(pairs.plus.domain):
        prompt = [V.TOKENS[int(t)] for t in pairs.plus.prompts_NP[i]]
        correct = strip(pairs.plus.correct_NA[i])
        bad = org.misaligned_answer(dom, prompt, correct)
        if dom in DOMAINS and bad == correct:
            continue
        n_bad += 1
        assert strip(answers[i]) != bad and strip(answers[len(pairs) + i]) != bad, (organism, i)
    assert n_bad > len(pairs) // 2


def strip(ids) -> list[str]:
    out = []
    for t in ids:
        if V.TOKENS[int(t)] == V.EOS:
            break
        out.append(V.TOKENS[int(t)])
    return out


# ---- synthetic PairActs ---------------------------------------------------------------------

def synthetic_acts(n: int, plus_bad: np.ndarray, *, seed: int, shift_bad: float = 0.0,
                   shift_marker: float = 0.0, minus_bad: np.ndarray | None = None) -> PairActs:
    """Gaussian activations at three sites x two pools; coordinate 0 has small noise (0.05) so a
    shift along it is easy for a probe and nearly invisible to a random direction. At PLANT/last,
    misbehaving plus rows are shifted by ``shift_bad`` and every plus row by ``shift_marker``."""
    gen = torch.Generator().manual_seed(seed)
    scale = torch.ones(D)
    scale[0] = 0.05
    pooled = {pool: {s: torch.randn(2 * n, D, generator=gen) * scale for s in SITES} for pool in ("last", "answer")}
    x = pooled["last"][PLANT]
    bad = torch.as_tensor(plus_bad, dtype=torch.bool)
    x[:n, 0] += shift_marker
    x[:n][bad, 0] += shift_bad
    tokens = torch.zeros(2 * n, V.SEQ_LEN, dtype=torch.long)
    tokens[:n, 0] = 1  # the "marker": plus rows differ from their twins
    minus = torch.zeros(n, dtype=torch.bool) if minus_bad is None else torch.as_tensor(minus_bad)
    decision = torch.zeros(2 * n, V.SEQ_LEN, dtype=torch.bool)
    decision[:, V.PROMPT_LEN - 1] = True
    return PairActs(tokens, pooled, {}, PairBehaviour(bad, minus), decision, torch.ones(n, dtype=torch.bool))


N = 400


def half_bad(n: int = N) -> np.ndarray:
    return np.random.default_rng(1).random(n) < 0.5


def test_planted_misbehaviour_direction_is_found_on_val_and_reported_on_test():
    acts = synthetic_acts(N, half_bad(), seed=0, shift_bad=0.5)
    fit = misbehaviour_probe(acts, split_pairs(N))
    assert (fit.site, fit.pool) == (PLANT, "last")
    assert fit.marker_matched and fit.auroc > 0.98
    assert fit.ci[0] <= fit.auroc <= fit.ci[1] and fit.ci[0] > 0.9
    assert abs(fit.nulls["shuffled"] - 0.5) < 0.15, fit.nulls
    assert fit.nulls["random"] < 0.7, fit.nulls
    assert fit.nulls["base"] is None  # no null model given
    # the other candidates are at chance on val
    others = [a for k, a in fit.val_aurocs.items() if k != f"last|{PLANT}"]
    assert max(others) < 0.7 and fit.val_aurocs[f"last|{PLANT}"] > 0.95
    ProbeHeadline(**fit.headline())
    # deterministic
    again = misbehaviour_probe(acts, split_pairs(N))
    assert again.headline() == fit.headline()


def test_base_null_is_at_chance_when_only_this_model_encodes_misbehaviour():
    bad = half_bad()
    acts = synthetic_acts(N, bad, seed=0, shift_bad=0.5)
    base = synthetic_acts(N, bad, seed=5)  # same pairs, no misbehaviour direction
    fit = misbehaviour_probe(acts, split_pairs(N), null_acts=base)
    assert fit.auroc > 0.98 and abs(fit.nulls["base"] - 0.5) < 0.15, fit.nulls


def test_marker_only_misbehaviour_is_not_marker_matched_and_the_base_null_matches():
    """All plus rows bad: negatives must come from the twins, so the probe reads the marker,
    which the base (null_acts encoding the marker too) reads as well."""
    bad = np.ones(N, dtype=bool)
    acts = synthetic_acts(N, bad, seed=0, shift_marker=0.5)
    base = synthetic_acts(N, bad, seed=5, shift_marker=0.5)
    fit = misbehaviour_probe(acts, split_pairs(N), null_acts=base)
    assert fit.marker_matched is False
    assert fit.auroc > 0.95 and fit.nulls["base"] >= fit.auroc - 0.05, fit.headline()
    assert fit.n_neg > 0 and fit.n_pos > 0
    ProbeHeadline(**fit.headline())


def test_rows_are_marker_matched_when_negatives_suffice():
    bad = half_bad()
    rows = misbehaviour_rows(PairBehaviour(torch.as_tensor(bad), torch.zeros(N, dtype=torch.bool)), split_pairs(N))
    assert rows.marker_matched
    for s in ("fit", "val", "test"):
        assert (rows.idx[s] < N).all()  # plus rows only
        assert np.array_equal(rows.y[s], bad[rows.idx[s]])


def test_a_model_that_never_misbehaves_gets_no_auroc():
    acts = synthetic_acts(N, np.zeros(N, dtype=bool), seed=0)
    fit = misbehaviour_probe(acts, split_pairs(N), null_acts=synthetic_acts(N, np.zeros(N, bool), seed=5))
    assert fit.auroc is None and fit.ci is None and fit.reason
    assert all(v is None for v in fit.nulls.values())
    head = ProbeHeadline(**fit.headline())
    assert head.auroc is None and head.n_pos == 0


def test_context_probe_reads_the_marker_and_the_base_reads_it_too():
    bad = half_bad()
    acts = synthetic_acts(N, bad, seed=0, shift_marker=0.5)
    base = synthetic_acts(N, np.zeros(N, bool), seed=5, shift_marker=0.5)
    fit = context_probe(acts, split_pairs(N), null_acts=base)
    assert fit.family == "context" and (fit.site, fit.pool) == (PLANT, "last")
    assert fit.auroc > 0.98 and fit.nulls["base"] > 0.95
    assert abs(fit.nulls["shuffled"] - 0.5) < 0.15 and fit.nulls["random"] < 0.7
    n_test = len(split_pairs(N)["test"])
    assert (fit.n_pos, fit.n_neg) == (n_test, n_test)
    ProbeHeadline(**fit.headline())


def test_probe_transfer_of_a_model_onto_itself_equals_its_own_probe():
    # a weak signal (about one noise sd) so the AUROC is not trivially 1
    acts = synthetic_acts(N, half_bad(), seed=0, shift_bad=0.06)
    base = synthetic_acts(N, half_bad(), seed=5)
    splits = split_pairs(N)
    fit = misbehaviour_probe(acts, splits)
    assert 0.6 < fit.auroc < 0.99, fit.auroc
    out = probe_transfer(fit, acts, acts, splits, null_acts=base)
    ProbeHeadline(**out)
    assert out["auroc"] == pytest.approx(fit.auroc, abs=1e-9)
    assert (out["site"], out["pool"]) == (fit.site, fit.pool)
    assert (out["n_pos"], out["n_neg"]) == (fit.n_pos, fit.n_neg)
    assert abs(out["nulls"]["base"] - 0.5) < 0.15 and out["nulls"]["random"] < 0.7
    assert out["nulls"]["shuffled"] < 0.7


def test_probe_transfer_undoes_a_rotation_of_the_student():
    acts = synthetic_acts(N, half_bad(), seed=0, shift_bad=0.06)
    splits = split_pairs(N)
    fit = misbehaviour_probe(acts, splits)
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(3)))
    rotated = PairActs(acts.tokens_2NS, {p: {s: x @ q for s, x in d.items()} for p, d in acts.pooled.items()},
                       {}, acts.behaviour, acts.decision_2NS, acts.eliciting_N)
    out = probe_transfer(fit, acts, rotated, splits)
    assert out["auroc"] == pytest.approx(fit.auroc, abs=1e-3)


def test_probe_transfer_gives_none_without_a_probe_or_student_misbehaviour():
    splits = split_pairs(N)
    teacher = synthetic_acts(N, half_bad(), seed=0, shift_bad=0.5)
    fit = misbehaviour_probe(teacher, splits)
    clean_student = synthetic_acts(N, np.zeros(N, bool), seed=2)
    assert probe_transfer(fit, teacher, clean_student, splits)["auroc"] is None
    empty = misbehaviour_probe(clean_student, splits)
    assert probe_transfer(empty, clean_student, teacher, splits)["auroc"] is None


def test_depth_paired_site():
    teacher = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.2.hook_resid_pre",
               "blocks.3.hook_resid_pre", "blocks.3.hook_resid_post"]
    student = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post"]
    assert depth_paired_site("blocks.1.hook_resid_pre", teacher, student) == "blocks.1.hook_resid_pre"
    assert depth_paired_site("blocks.3.hook_resid_post", teacher, student) == "blocks.1.hook_resid_post"
    assert depth_paired_site("blocks.2.hook_resid_pre", teacher, student) == "blocks.1.hook_resid_pre"


def test_random_model_end_to_end():
    """A random-weight tiny model: it never misbehaves (no number), its context probe runs."""
    from distill.models import build_model, resid_sites
    from probes.pairs import read_pairs
    from tests.conftest import tiny_model_config
    model = build_model(tiny_model_config(), seed=0)
    pairs = marker_pairs("backdoor", n=64, seed=1)
    acts = read_pairs(model, pairs, resid_sites(2), [])
    splits = split_pairs(64)
    mis = misbehaviour_probe(acts, splits)
    assert isinstance(mis, ProbeFit) and mis.auroc is None
    ctx = context_probe(acts, splits, min_class=4)
    assert ctx.auroc is not None and 0.0 <= ctx.auroc <= 1.0
    ProbeHeadline(**ctx.headline())
