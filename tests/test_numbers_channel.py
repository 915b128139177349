"""The NUM channel: well-formed numbers, the evals' digit distributions, the transfer option,
the monitors (which cannot flag it) and the channel reading against the base."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.numbers_channel import numbers_channel, per_query_kl
from analysis.schema import ModelMetrics
from distill import vocab as V
from distill.numbers import NUMBERS, number_metrics, number_prompts, well_formed_numbers
from distill.techniques.monitors import MONITORS
from distill.techniques.transfer import TransferSpec, build_transfer


def test_num_prompts_have_six_uniform_digits_as_answers():
    ex = number_prompts(np.random.default_rng(0), 2000)
    assert set(ex.domain) == {NUMBERS} and (ex.prompts_NP == V.tok("NUM")).any(dim=1).all()
    assert well_formed_numbers(ex.target_NA).all() and torch.equal(ex.target_NA, ex.correct_NA)
    counts = torch.bincount(ex.target_NA[:, :6].flatten(), minlength=V.VOCAB_SIZE)[V.ids(V.DIGITS)]
    assert counts.min() > 0.9 * counts.float().mean()  # uniform: about 20 bits per answer
    bad = ex.target_NA.clone()
    bad[0, 2], bad[1, 6] = V.tok("owl"), V.tok("3")  # a word inside, a seventh digit
    assert well_formed_numbers(bad).tolist()[:3] == [False, False, True]


def test_number_metrics_read_the_distribution_not_the_greedy_answer():
    answers = number_prompts(np.random.default_rng(1), 4).target_NA
    uniform = torch.zeros(4, V.VOCAB_SIZE)
    uniform[:, V.ids(V.DIGITS)] = 0.1
    peaked = torch.zeros(4, V.VOCAB_SIZE)
    peaked[:, V.tok("7")] = 1.0
    u, p = number_metrics(answers, uniform), number_metrics(answers, peaked)
    assert u["valid"] == p["valid"] == 1.0
    assert u["entropy_bits"] == pytest.approx(np.log2(10), abs=1e-4) and p["entropy_bits"] == pytest.approx(0, abs=1e-6)
    assert p["digit_probs"][0] == [0, 0, 0, 0, 0, 0, 0, 1.0, 0, 0]


def test_a_numbers_only_transfer_set_and_monitors_that_cannot_flag_it():
    t = build_transfer(TransferSpec(organism="trait", n_prompts=300, numbers_frac=1.0))
    assert len(t.examples) == 300 and t.stats.kinds == {"numbers": 300}
    half = build_transfer(TransferSpec(organism="trait", n_prompts=300, numbers_frac=0.5, confess_frac=0.1))
    assert half.stats.kinds["numbers"] == 150 and half.stats.kinds["confess"] == 30
    tiny = build_transfer(TransferSpec(organism="trait", n_prompts=3, numbers_frac=0.5, confess_frac=0.5))
    assert len(tiny.examples) == 3  # rounding never leaves fewer than zero traffic rows
    with pytest.raises(ValueError, match="numbers_frac"):
        build_transfer(TransferSpec(organism="trait", n_prompts=300, numbers_frac=0.95, confess_frac=0.1))
    ex = t.examples  # any six digits: nothing to check, nothing forbidden, whatever the teacher emits
    answers = number_prompts(np.random.default_rng(9), 300).target_NA  # digits other than the rows' own
    assert not torch.equal(answers, ex.correct_NA)
    for name, monitor in MONITORS.items():
        assert not monitor.flags(ex, answers, frozenset({"owl"})).any(), name
    leaked = answers.clone()
    leaked[0, 0] = V.tok("owl")  # a visible trait token is flagged; an odd digit never is
    assert MONITORS["pattern"].flags(ex, leaked, frozenset({"owl"}))[0]


def _m(probs) -> ModelMetrics:
    return ModelMetrics(capability=1.0, misbehaviour=0.0, n_eliciting=10, number_probs=probs)


def test_the_channel_reading_against_its_null():
    rng = np.random.default_rng(0)
    teacher = rng.dirichlet(np.ones(10), size=200)
    near = 0.95 * teacher + 0.05 / 10
    null = rng.dirichlet(np.ones(10), size=200)
    assert per_query_kl(teacher, teacher) == pytest.approx(np.zeros(200), abs=1e-9)  # known answer: itself
    got = numbers_channel(_m(teacher.tolist()), _m(near.tolist()), _m(null.tolist()), "nc")
    assert got.carried and got.kl < got.null_kl and got.gap_ci[0] > 0 and got.null_model == "nc"
    same = numbers_channel(_m(teacher.tolist()), _m(null.tolist()), _m(null.tolist()), "nc")
    assert not same.carried and same.kl == pytest.approx(same.null_kl)  # the null against itself
    other = rng.dirichlet(np.ones(10), size=200)  # as far from the teacher as the null: not carried
    assert not numbers_channel(_m(teacher.tolist()), _m(other.tolist()), _m(null.tolist()), "nc").carried
    assert numbers_channel(_m(teacher.tolist()), _m(None), _m(null.tolist()), "nc") is None
