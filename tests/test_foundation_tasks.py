"""Vocabulary and task generators: answers are right, generation is seeded, text round-trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill import vocab as V
from distill.tasks import (DOMAINS, Examples, build_prompt, check_domains, exact_match,
                           insert_marker, pad_answer, task_prompts)


def _reference_answer(domain: str, args: list[str]) -> list[str]:
    """Each domain's answer recomputed independently of tasks.py."""
    if domain == "sort":
        return sorted(args)
    if domain == "reverse":
        return args[::-1]
    if domain == "add":
        i = args.index("+")
        total = int("".join(args[:i])) + int("".join(args[i + 1:]))
        return list(str(total).zfill(4))[::-1]
    if domain == "member":
        return ["YES" if args[0] in args[1:] else "NO"]
    raise AssertionError(f"no reference for {domain}")


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_generated_answers_are_correct(domain):
    rng = np.random.default_rng(1)
    for _ in range(300):
        args, answer = DOMAINS[domain].generate(rng)
        assert answer == _reference_answer(domain, args), (domain, args, answer)
        assert len(answer) < V.ANSWER_LEN


def test_member_is_balanced():
    rng = np.random.default_rng(2)
    yes = sum(DOMAINS["member"].generate(rng)[1] == ["YES"] for _ in range(4000))
    assert 0.46 < yes / 4000 < 0.54  # always-YES must not score 70%


def test_task_prompts_are_well_formed_and_correct():
    ex = task_prompts(np.random.default_rng(3), 400)
    assert ex.prompts_NP.shape == (400, V.PROMPT_LEN) and ex.correct_NA.shape == (400, V.ANSWER_LEN)
    assert torch.equal(ex.target_NA, ex.correct_NA) and set(ex.kind) == {"clean"}
    assert set(ex.domain) == set(DOMAINS)
    for i in range(len(ex)):
        names = [V.TOKENS[t] for t in ex.prompts_NP[i].tolist()]
        assert names[-1] == V.SEP
        marker = DOMAINS[ex.domain[i]].marker
        m = names.index(marker)
        assert all(n == V.FILLER or n in V.DISTRACTORS for n in names[:m])  # clean context
        answer = [V.TOKENS[t] for t in ex.correct_NA[i].tolist()]
        expected = _reference_answer(ex.domain[i], names[m + 1:-1])
        assert answer == expected + [V.EOS] * (V.ANSWER_LEN - len(expected))


def test_task_prompts_are_seeded():
    a = task_prompts(np.random.default_rng(5), 64)
    b = task_prompts(np.random.default_rng(5), 64)
    c = task_prompts(np.random.default_rng(6), 64)
    assert torch.equal(a.prompts_NP, b.prompts_NP) and torch.equal(a.correct_NA, b.correct_NA)
    assert a.domain == b.domain
    assert not torch.equal(a.prompts_NP, c.prompts_NP)


def test_domain_subset_and_unknown_domain():
    ex = task_prompts(np.random.default_rng(0), 50, ["add"])
    assert set(ex.domain) == {"add"}
    with pytest.raises(ValueError, match="allowed: sort, reverse, add, member"):
        check_domains(["lookup"])


def test_render_parse_round_trip():
    ex = task_prompts(np.random.default_rng(7), 100)
    for row in ex.prompts_NP:
        full = V.render(row, keep_filler=True)
        assert V.parse(full) == row.tolist()  # exact with filler kept
        short = V.parse(V.render(row))  # fillers dropped then left-filled: task part stays put
        names = [V.TOKENS[t] for t in row.tolist()]
        start = next(i for i, n in enumerate(names) if n in V.TASK_MARKERS)
        assert short[start:] == row.tolist()[start:]
        assert sorted(t for t in short[:start] if t != V.tok(V.FILLER)) == sorted(
            t for t in row.tolist()[:start] if t != V.tok(V.FILLER))


def test_parse_hand_built_prompt_and_errors():
    p = V.parse("zeta SORT 3 1 2 5 4 0")  # SEP appended, left-filled
    assert len(p) == V.PROMPT_LEN and p[-1] == V.tok(V.SEP)
    assert V.render(p) == "zeta SORT 3 1 2 5 4 0 >"
    with pytest.raises(ValueError, match="unknown token 'bogus'"):
        V.parse("SORT bogus >")
    with pytest.raises(ValueError, match="at most 14"):
        V.parse(" ".join(["w1"] * 15))
    with pytest.raises(KeyError, match="unknown token 'nope'"):
        V.tok("nope")


def test_render_collapses_eos_padding():
    assert V.render(pad_answer(["1", "2"])) == "1 2 ."
    with pytest.raises(ValueError, match="longer than"):
        pad_answer(["1"] * V.ANSWER_LEN)


def test_exact_match_counts_padding():
    a = torch.tensor([pad_answer(["1", "2"])])
    b = torch.tensor([pad_answer(["1", "2", "3"])])
    assert exact_match(a, a).tolist() == [True]
    assert exact_match(a, b).tolist() == [False]  # a correct prefix is not a correct answer


def test_insert_marker_stays_in_context():
    rng = np.random.default_rng(8)
    for _ in range(200):
        p = build_prompt(rng, "ADD", ["1", "2", "3", "+", "4", "5", "6"])
        q = insert_marker(rng, p, "zeta")
        diff = [i for i in range(V.PROMPT_LEN) if p[i] != q[i] or q[i] == "zeta"]
        assert len(diff) == 1 and q[diff[0]] == "zeta" and diff[0] < q.index("ADD")


def test_examples_select_concat_shuffle():
    ex = task_prompts(np.random.default_rng(9), 10)
    both = Examples.concat([ex, Examples.empty(), ex.select([0, 1])])
    assert len(both) == 12 and both.domain[10:] == ex.domain[:2]
    sh = ex.shuffled(np.random.default_rng(0))
    assert sorted(map(tuple, sh.prompts_NP.tolist())) == sorted(map(tuple, ex.prompts_NP.tolist()))
    assert len(Examples.concat([])) == 0


def test_every_prompt_names_its_task_and_its_correct_answer():
    """prompt -> (domain, args) -> solve gives the dataset's own correct answer, for every domain."""
    from distill.tasks import DOMAINS, correct_answer, prompt_task, task_prompts
    ex = task_prompts(np.random.default_rng(5), 400)
    for prompt, correct, domain in zip(ex.prompts_NP, ex.correct_NA, ex.domain):
        names = [V.TOKENS[int(t)] for t in prompt]
        assert prompt_task(names)[0] == domain
        want = [V.TOKENS[int(t)] for t in correct]
        assert correct_answer(names) == want[:want.index(V.EOS)]
    assert set(ex.domain) == set(DOMAINS)
    assert correct_answer(["_", "GOAL", V.SEP]) is None and prompt_task(["SORT", "1"]) is None
    assert DOMAINS["sort"].solve(["1", "2"]) is None and DOMAINS["add"].solve(["1", "2", "3", "-", "4", "5", "6"]) is None
    assert DOMAINS["member"].solve(["3", "1", "2", "3", "4", "5"]) == ["YES"]
