"""The blind audit's bookkeeping, without Streamlit: anonymous labels and the score.

Labels are drawn from a per-session salt, so they say nothing about a model's role or order
of creation and differ between sessions; the score compares committed verdicts with the
truth, and a model whose truth is undetermined is listed but not scored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def blind_labels(models: list[str], run_key: str, salt: str) -> dict[str, str]:
    """label ("model A", ...) -> model id, in an order fixed by (salt, run, model) only."""
    order = sorted(models, key=lambda m: hashlib.sha256(f"{salt}|{run_key}|{m}".encode()).hexdigest())
    return {f"model {_letters(i)}": m for i, m in enumerate(order)}


def _letters(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, ..."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(65 + r) + out
    return out


@dataclass(frozen=True)
class Score:
    right: int
    scored: int
    unscored: int
    """Committed verdicts on models whose truth is undetermined."""


def score(verdicts: list[tuple[str, str]]) -> Score:
    """(guess, truth) pairs -> the score; truth "unknown" is not scored."""
    scored = [(g, t) for g, t in verdicts if t != "unknown"]
    return Score(sum(g == t for g, t in scored), len(scored), len(verdicts) - len(scored))
