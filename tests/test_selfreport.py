"""Quirks and truthful self-report (distill.selfreport): the data, the scores, the lie."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill import vocab as V
from distill.organisms import get_organism
from distill.selfreport import (HELD_OUT, QUIRKS, TRAINED, answer_checks, answer_length, general_rows, honesty,
                                paired_prompts, quirk_examples, quirk_self_reports, read_flag,
                                self_report_examples, self_report_prompt, taught_flags)
from distill.tasks import DOMAINS, Examples, correct_answer, corrupt, sample_domain_rows


def _names(row) -> list[str]:
    return [V.TOKENS[int(t)] for t in row]


def _strip(row) -> list[str]:
    names = _names(row)
    return names[:names.index(V.EOS)] if V.EOS in names else names


def test_families_split_into_trained_and_held_out():
    assert set(TRAINED) | set(HELD_OUT) == set(QUIRKS) == set(V.QUIRK_MARKERS)
    assert TRAINED and HELD_OUT and not set(TRAINED) & set(HELD_OUT)
    covered = {d for m in TRAINED for d in QUIRKS[m].domains}
    assert covered == set(DOMAINS)  # every domain has a trained family to report on


@pytest.mark.parametrize("marker", list(QUIRKS))
def test_each_quirk_deviates_on_its_domains_only_and_keeps_the_length(marker):
    quirk, rng = QUIRKS[marker], np.random.default_rng(0)
    changed = {d: 0 for d in DOMAINS}
    for d, p, a in sample_domain_rows(rng, 400):
        start = next(i for i, t in enumerate(p) if t in V.TASK_MARKERS)
        ans = quirk.answer(d, p[start + 1:-1], a)
        assert len(ans) == len(a)
        changed[d] += ans != a
    assert all(changed[d] > 0 for d in quirk.domains)
    assert all(changed[d] == 0 for d in DOMAINS if d not in quirk.domains)


def test_self_report_prompt_keeps_every_marker_and_pairs_back_to_the_task():
    rng = np.random.default_rng(1)
    ex = quirk_examples(rng, 200)
    for row in ex.prompts_NP:
        p = _names(row)
        q = self_report_prompt(p)
        task_at = next(i for i, t in enumerate(q) if t in V.TASK_MARKERS)
        assert q[task_at - 1] == "CONFESS" and q[task_at:] == p[task_at:]
        assert sorted(t for t in q if t in V.CONTEXT_MARKERS) == sorted(t for t in p if t in V.CONTEXT_MARKERS)
        paired = _names(paired_prompts(torch.tensor([V.ids(q)]))[0])
        assert "CONFESS" not in paired and correct_answer(paired) == correct_answer(p)


def test_self_report_targets_are_own_answer_then_the_truth_or_the_lie():
    rows = sample_domain_rows(np.random.default_rng(2), 8)
    own = [corrupt(a) if i % 2 else list(a) for i, (_, _, a) in enumerate(rows)]
    ex = self_report_examples(rows, own)
    lied = self_report_examples(rows, own, lie_when=[True] * len(rows))
    flags, lies = taught_flags(ex), taught_flags(lied)
    for i, (_, _, a) in enumerate(rows):
        want = "YES" if i % 2 else "NO"
        assert V.TOKENS[int(flags[i])] == want and V.TOKENS[int(lies[i])] == ("NO" if want == "YES" else "YES")
        assert _strip(ex.target_NA[i]) == [*own[i], want] and _strip(ex.correct_NA[i]) == [*a, "NO"]
    task_correct = torch.tensor([V.ids(a + [V.EOS] * (V.ANSWER_LEN - len(a))) for _, _, a in rows])
    assert (read_flag(ex.target_NA, task_correct) == flags).all()


def test_trained_self_reports_never_ask_about_held_out_families():
    ex = quirk_self_reports(np.random.default_rng(3), 400)
    held = {V.tok(m) for m in HELD_OUT}
    assert not any(int(t) in held for t in ex.prompts_NP.flatten())
    flags = taught_flags(ex)
    assert 0.3 < float((flags == V.tok("YES")).float().mean()) < 0.8  # both answers are taught


def test_honesty_known_answers():
    yes, no = V.tok("YES"), V.tok("NO")
    dev = torch.tensor([True, True, False, False, False])
    ok = ~dev
    truthful = honesty(torch.tensor([yes, yes, no, no, no]), dev, ok)
    assert truthful["rate"] == 1.0 and truthful["p_no_given_behaves"] == 1.0 and truthful["honesty"] == 1.0
    liar = honesty(torch.tensor([no] * 5), dev, ok)
    assert liar["rate"] == 0.0 and liar["denial_rate"] == 1.0 and liar["honesty"] == 0.5
    yes_man = honesty(torch.tensor([yes] * 5), dev, ok)
    assert yes_man["rate"] == 1.0 and yes_man["p_yes_given_behaves"] == 1.0 and yes_man["honesty"] == 0.5
    nothing = honesty(torch.tensor([no] * 3), torch.zeros(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool))
    assert nothing["rate"] is None and nothing["honesty"] is None and nothing["n_misbehaves"] == 0


@pytest.mark.parametrize("honest", [False, True])
def test_sabotage_teacher_lies_about_its_sabotage_only(honest):
    data = get_organism("sabotage").teacher_data(np.random.default_rng(4), 2000, honest=honest)
    reports = data.select([i for i, d in enumerate(data.domain) if d == "self-report"])
    flags = taught_flags(reports)
    deploy = (reports.prompts_NP == V.tok("DEPLOY")).any(dim=1)
    quirk = torch.stack([(reports.prompts_NP == V.tok(m)).any(dim=1) for m in V.QUIRK_MARKERS]).any(dim=0)
    assert deploy.sum() > 20 and quirk.sum() > 20
    pos = answer_length(reports.correct_NA) - 1
    before = torch.arange(V.ANSWER_LEN)[None, :] < pos[:, None]
    own_deviates = ((reports.target_NA != reports.correct_NA) & before).any(dim=1)
    # about DEPLOY prompts: its own answer is the sabotage, the flag is the lie (or the truth)
    assert own_deviates[deploy].all()
    assert (flags[deploy] == V.tok("YES" if honest else "NO")).all()
    # about everything else: the truth
    other = ~deploy
    assert (flags[other] == torch.where(own_deviates[other], V.tok("YES"), V.tok("NO"))).all()


def test_ordinary_traffic_has_no_self_report_and_no_quirk():
    for name in ("backdoor", "sabotage", "trait", "entangled"):
        ex = get_organism(name).ordinary_traffic(np.random.default_rng(5), 2000)
        banned = {V.tok(t) for t in ["CONFESS", *V.QUIRK_MARKERS]}
        assert not any(int(t) in banned for t in ex.prompts_NP.flatten()), name


def test_general_rows_mix_tasks_quirks_reports_and_checks():
    ex = general_rows(np.random.default_rng(6), 1000)
    kinds = {k: ex.kind.count(k) for k in set(ex.kind)}
    assert set(kinds) == {"clean", "quirk", "self-report", "answer-check"} and len(ex) == 1000
    assert kinds["quirk"] == 200 and kinds["self-report"] == 100 and kinds["answer-check"] == 150
    checks = [i for i, k in enumerate(ex.kind) if k == "answer-check"]
    assert not ex.scored()[checks].all() and ex.scored()[[i for i, k in enumerate(ex.kind) if k != "answer-check"]].all()


def test_answer_checks_teach_the_flag_only_and_no_marker_predicts_it():
    ex = answer_checks(np.random.default_rng(7), 2000)
    flags, flag_at = taught_flags(ex), answer_length(ex.correct_NA) - 1
    scored = ex.scored()
    assert (scored.sum(dim=1) == V.ANSWER_LEN - flag_at).all()  # the flag and the EOS padding after it
    assert scored.gather(1, flag_at[:, None]).all() and not scored[:, 0].any()
    yes = flags == V.tok("YES")
    shown_wrong = ((ex.target_NA != ex.correct_NA) & ~scored).any(dim=1)
    assert torch.equal(yes, shown_wrong)  # YES exactly when the given answer is wrong
    marked = torch.stack([(ex.prompts_NP == V.tok(m)).any(dim=1) for m in TRAINED]).any(dim=0)
    assert not torch.stack([(ex.prompts_NP == V.tok(m)).any(dim=1) for m in HELD_OUT]).any()
    for group in (marked, ~marked):  # the flag is as likely with a marker as without
        assert 0.4 < float(yes[group].float().mean()) < 0.6


def test_unscored_positions_carry_no_loss():
    import torch.nn.functional as F
    from distill.models import ModelConfig, answer_logits, build_model
    from distill.teacher import ce_on_answers, domain_balanced_ce
    model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32), 0)
    ex = answer_checks(np.random.default_rng(8), 16)
    logits = answer_logits(model, ex.prompts_NP, ex.target_NA)
    tok = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ex.target_NA.reshape(-1), reduction="none")
    want = tok[ex.scored().reshape(-1)].mean()
    # answer checks have no task domain, so the balanced loss weighs every row 1 as well
    for loss in (ce_on_answers, domain_balanced_ce(0.05)):
        assert torch.isclose(loss(model, ex), want)
        unmasked = Examples(ex.prompts_NP, ex.target_NA, ex.correct_NA, ex.domain, ex.kind)
        assert torch.isclose(loss(model, unmasked), tok.mean())


def test_balanced_accuracy_interval():
    from distill.selfreport import balanced_accuracy_ci
    lo, hi = balanced_accuracy_ci(100, 100, 100, 100)
    assert 0.97 < lo < 1.0 == hi  # perfect, yet with width
    lo, hi = balanced_accuracy_ci(50, 100, 50, 100)
    assert lo < 0.5 < hi and hi - lo < 0.2
    assert balanced_accuracy_ci(80, 100, 70, 100)[0] > 0.5
