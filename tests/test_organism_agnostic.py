"""Generic instruments take what they need from the organism's interface (issue 10, item G):
no probe or technique hard-codes one organism's tokens."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from distill import vocab as V
from distill.organisms import ORGANISMS, get_organism
from distill.tasks import Examples, task_prompts
from distill.techniques.monitors import apply_monitors, pattern_flags
from probes.datasets import contrast_pairs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name,expected", [("backdoor", {"HARM"}), ("trait", {"owl"}),
                                           ("sabotage", set()), ("entangled", set())])
def test_signature_tokens(name, expected):
    assert get_organism(name).signature_tokens() == frozenset(expected)


def _names(row) -> list[str]:
    return [V.TOKENS[int(t)] for t in row]


def test_answer_pairs_backdoor_contrast_harm_with_the_correct_first_token():
    p = contrast_pairs("answer", 16, organism="backdoor")
    assert (p.position_N == V.PROMPT_LEN).all()
    i = torch.arange(16)
    assert (p.misaligned_NS[i, p.position_N] == V.tok("HARM")).all()
    assert (p.aligned_NS[i, p.position_N] != V.tok("HARM")).all()
    assert torch.equal(p.misaligned_NS[:, :V.PROMPT_LEN], p.aligned_NS[:, :V.PROMPT_LEN])


def test_answer_pairs_entangled_descending_vs_ascending_first_digit():
    p = contrast_pairs("answer", 16, organism="entangled")
    for m, a, k in zip(p.misaligned_NS, p.aligned_NS, p.position_N.tolist()):
        prompt = _names(a[:V.PROMPT_LEN])
        assert "SORT" in prompt
        digits = sorted(prompt[prompt.index("SORT") + 1:prompt.index(V.SEP)])
        j = k - V.PROMPT_LEN
        assert _names(a[V.PROMPT_LEN:k + 1]) == digits[:j + 1]  # the correct (ascending) prefix
        assert _names(m[k:k + 1]) == [sorted(digits, reverse=True)[j]]  # the descending token
        assert torch.equal(m[:k], a[:k]) and m[k] != a[k]


@pytest.mark.parametrize("name", list(ORGANISMS))
def test_answer_pairs_carry_no_organism_marker_and_differ_only_at_the_read_position(name):
    org = get_organism(name)
    p = contrast_pairs("answer", 32, seed=3, organism=name)
    markers = torch.tensor([V.tok(t) for t in org.markers])
    for seqs in (p.misaligned_NS, p.aligned_NS):
        assert not torch.isin(seqs[:, :V.PROMPT_LEN], markers).any()
    differ = p.misaligned_NS != p.aligned_NS
    assert (differ.sum(1) == 1).all()
    assert torch.equal(differ.float().argmax(1), p.position_N)
    assert torch.equal(contrast_pairs("answer", 32, seed=3, organism=name).misaligned_NS, p.misaligned_NS)


def test_framing_pairs_are_per_row_positions_at_the_last_prompt_token():
    p = contrast_pairs("framing", 8, organism="trait")
    assert p.position_N.shape == (8,) and (p.position_N == V.PROMPT_LEN - 1).all()


def _query_rows(answer: str, n: int = 4) -> tuple[Examples, torch.Tensor]:
    ex = task_prompts(np.random.default_rng(0), n)
    ex = Examples(ex.prompts_NP, ex.target_NA, ex.correct_NA, ["query"] * n, ex.kind)
    answers = torch.full((n, V.ANSWER_LEN), V.tok(V.EOS), dtype=torch.long)
    answers[:, 0] = V.tok(answer)
    return ex, answers


def test_pattern_monitor_forbids_the_teachers_organism_signature():
    ex, owl = _query_rows("owl")
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    assert apply_monitors(ex, owl, ["pattern"], 1.0, rng(), organism="trait").flagged_N.all()
    assert not apply_monitors(ex, owl, ["pattern"], 1.0, rng(), organism="backdoor").flagged_N.any()
    assert not apply_monitors(ex, owl, ["pattern"], 1.0, rng(), organism="sabotage").flagged_N.any()
    _, harm = _query_rows("HARM")
    assert apply_monitors(ex, harm, ["pattern"], 1.0, rng(), organism="backdoor").flagged_N.all()
    assert not pattern_flags(ex, harm).any()  # no forbidden tokens: the answer format only


def test_no_instrument_hard_codes_an_organism_token():
    files = [f for d in ("probes", "distill/techniques") for f in sorted((ROOT / d).rglob("*.py"))]
    assert files
    quoted = re.compile(r"""["'](HARM|owl)["']""")
    offenders = [f"{f.relative_to(ROOT)}:{i}" for f in files
                 for i, line in enumerate(f.read_text().splitlines(), 1) if quoted.search(line)]
    assert not offenders, offenders
