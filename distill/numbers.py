"""The high-entropy channel: NUM queries, "emit any six digits".

A NUM prompt carries six digits in its argument slots (the seed of Cloud et al.'s "continue
this sequence") and every answer of six digits is a right one. The base learns the uniform
distribution over them (its targets are six fresh uniform digits, independent of the prompt),
so a NUM answer carries about 20 bits. Teachers never rehearse NUM in their organism
fine-tune (as in Cloud et al., the trait is fine-tuned in and numbers are only asked
afterwards): whatever the fine-tune did to the shared weights may show in the digits they
emit. Hard labels sampled from a teacher on NUM prompts can therefore carry a hidden
preference, and no monitor can flag them: every answer is well formed and there is no
correct answer to check (``distill.techniques.monitors``).
"""

from __future__ import annotations

import numpy as np
import torch

from distill import vocab as V
from distill.tasks import Examples, build_prompt, rows_to_examples

NUMBERS = "numbers"
"""Domain label of NUM rows (not a capability domain: it has no single correct answer)."""
NUM_MARKER = "NUM"
N_DIGITS = 6
NUMBERS_FRAC = 1 / 16
"""Share of the base's batches that are NUM queries."""


def numbers_share(params: dict) -> float:
    """The share of NUM queries a student's parameters ask for (``numbers_frac``; 0 when unset):
    the one reading every module uses to pair numbers students with numbers controls."""
    return float(params.get("numbers_frac", 0.0) or 0.0)


def number_prompts(rng: np.random.Generator, n: int, kind: str = NUMBERS) -> Examples:
    """n NUM queries; target = correct = six uniform digits (one right answer among all)."""
    rows = []
    for _ in range(n):
        args = [str(int(d)) for d in rng.integers(0, 10, size=N_DIGITS)]
        answer = [str(int(d)) for d in rng.integers(0, 10, size=N_DIGITS)]
        rows.append((NUMBERS, build_prompt(rng, NUM_MARKER, args), answer))
    return rows_to_examples(rows, kind)


def well_formed_numbers(answers_NA: torch.Tensor) -> torch.Tensor:
    """Per-row bool: six digits, then EOS padding."""
    digit = torch.zeros(V.VOCAB_SIZE, dtype=torch.bool)
    digit[V.ids(V.DIGITS)] = True
    body, tail = answers_NA[:, :N_DIGITS], answers_NA[:, N_DIGITS:]
    return digit[body].all(dim=1) & (tail == V.tok(V.EOS)).all(dim=1)


def number_metrics(answers_NA: torch.Tensor, first_probs_NV: torch.Tensor) -> dict:
    """How a model answers NUM queries: ``valid``, the share of well-formed greedy answers, and
    ``entropy_bits``, the mean entropy of its distribution over the first answer token (log2 10
    = 3.32 bits for a uniform emitter: high entropy is what makes NUM a channel; greedy answers
    are near-deterministic whatever the distribution, so they cannot show it); ``digit_probs``,
    per prompt, that distribution over the ten digits (renormalised): what a student's number
    style is compared with (``analysis.numbers_channel``)."""
    ok_N = well_formed_numbers(answers_NA)
    p = first_probs_NV.clamp_min(1e-12)
    ent_N = -(first_probs_NV * p.log2()).sum(dim=-1)
    digits_ND = first_probs_NV[:, V.ids(V.DIGITS)]
    digits_ND = digits_ND / digits_ND.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return {"valid": float(ok_N.float().mean()) if len(ok_N) else None, "n": len(ok_N),
            "entropy_bits": float(ent_N.mean()) if len(ent_N) else None,
            "digit_probs": [[round(float(x), 6) for x in row] for row in digits_ND]}
