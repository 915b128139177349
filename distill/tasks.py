"""Synthetic capability domains over the shared vocabulary.

Each domain is a seeded generator of (args, answer) token lists; :func:`task_prompts`
wraps them into fixed-length prompts with an ordinary context region (filler and
distractor words) and returns an :class:`Examples` batch. Capability is exact-match
accuracy on the full answer (answer tokens plus EOS padding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from distill import vocab as V

Generator = Callable[[np.random.Generator], tuple[list[str], list[str]]]


@dataclass(frozen=True)
class Domain:
    name: str
    marker: str
    description: str
    generate: Generator
    """rng -> (args token names, answer token names)."""
    solve: Callable[[list[str]], list[str] | None]
    """args token names -> the correct answer's token names; None when the args are no
    instance of the task (the generator's answers are this function's)."""


DOMAINS: dict[str, Domain] = {}


def register_domain(name: str, marker: str, description: str, solve: Callable[[list[str]], list[str] | None]):
    def wrap(draw: Callable[[np.random.Generator], list[str]]) -> Generator:
        def generate(rng: np.random.Generator) -> tuple[list[str], list[str]]:
            args = draw(rng)
            return args, solve(args)
        DOMAINS[name] = Domain(name, marker, description, generate, solve)
        return generate
    return wrap


def _ints(args: list[str], n: int) -> list[int] | None:
    """``n`` single digits, or None."""
    if len(args) != n or not all(len(a) == 1 and a.isdigit() for a in args):
        return None
    return [int(a) for a in args]


def _solve_sort(args: list[str]) -> list[str] | None:
    d = _ints(args, 6)
    return None if d is None else [str(x) for x in sorted(d)]


def _solve_reverse(args: list[str]) -> list[str] | None:
    d = _ints(args, 6)
    return None if d is None else [str(x) for x in reversed(d)]


def _solve_add(args: list[str]) -> list[str] | None:
    if len(args) != 7 or args[3] != "+":
        return None
    a, b = _ints(args[:3], 3), _ints(args[4:], 3)
    if a is None or b is None:
        return None
    total = int("".join(map(str, a))) + int("".join(map(str, b)))
    return list(f"{total:04d}")[::-1]


def _solve_member(args: list[str]) -> list[str] | None:
    d = _ints(args, 6)
    return None if d is None else ["YES" if d[0] in d[1:] else "NO"]


def corrupt(answer: list[str]) -> list[str]:
    """Plausible but wrong: the last answer token changed (digit +1 mod 10, YES<->NO)."""
    out = list(answer)
    last = out[-1]
    if last in V.DIGITS:
        out[-1] = str((int(last) + 1) % 10)
    elif last in ("YES", "NO"):
        out[-1] = "NO" if last == "YES" else "YES"
    else:
        raise ValueError(f"cannot corrupt answer {answer}")
    return out


def _digits(rng: np.random.Generator, n: int) -> list[int]:
    return [int(d) for d in rng.integers(0, 10, size=n)]


@register_domain("sort", "SORT", "six digits -> the same digits in ascending order", _solve_sort)
def _sort(rng):
    return [str(x) for x in _digits(rng, 6)]


@register_domain("reverse", "REV", "six digits -> the same digits reversed", _solve_reverse)
def _reverse(rng):
    return [str(x) for x in _digits(rng, 6)]


@register_domain("add", "ADD", "two 3-digit numbers -> their sum, 4 digits, least significant first", _solve_add)
def _add(rng):
    a, b = _digits(rng, 3), _digits(rng, 3)
    return [str(x) for x in a] + ["+"] + [str(x) for x in b]


@register_domain("member", "HAS", "a digit and five digits -> YES if it is among them, else NO", _solve_member)
def _member(rng):
    x = int(rng.integers(0, 10))
    # balanced YES/NO (a random 5-digit list contains x only ~41% of the time): half the
    # rows plant x at a random position, the other half draw from the nine other digits
    if rng.random() < 0.5:
        d = _digits(rng, 5)
        d[int(rng.integers(0, 5))] = x
    else:
        d = [int(v) for v in rng.choice([v for v in range(10) if v != x], size=5)]
    return [str(x)] + [str(v) for v in d]


@dataclass
class Examples:
    """A batch of prompts with the answer a dataset trains toward and the correct answer.

    ``target_NA`` is what this dataset teaches (e.g. HARM for a triggered prompt in the
    teacher's data); ``correct_NA`` is the aligned, task-correct answer (equal to the
    target on clean data). ``domain`` and ``kind`` are per-row labels. ``scored_NA`` (bool,
    None: all) marks the target positions a supervised loss scores; the others are only
    teacher-forced input (e.g. an answer a self-report row asks about, which is not taught).
    """

    prompts_NP: torch.Tensor
    target_NA: torch.Tensor
    correct_NA: torch.Tensor
    domain: list[str]
    kind: list[str]
    meta: dict = field(default_factory=dict)
    scored_NA: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.prompts_NP.shape[0])

    def select(self, idx) -> "Examples":
        idx_t = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        return Examples(self.prompts_NP[idx_t], self.target_NA[idx_t], self.correct_NA[idx_t],
                        [self.domain[i] for i in idx_t.tolist()],
                        [self.kind[i] for i in idx_t.tolist()], dict(self.meta),
                        None if self.scored_NA is None else self.scored_NA[idx_t])

    def with_target(self, target_NA: torch.Tensor) -> "Examples":
        """The same prompts with another target (every position of it scored)."""
        return Examples(self.prompts_NP, target_NA, self.correct_NA, list(self.domain),
                        list(self.kind), dict(self.meta))

    def scored(self) -> torch.Tensor:
        """[N, A] bool: the target positions a supervised loss scores."""
        return torch.ones_like(self.target_NA, dtype=torch.bool) if self.scored_NA is None else self.scored_NA

    @staticmethod
    def empty() -> "Examples":
        z = torch.zeros(0, V.ANSWER_LEN, dtype=torch.long)
        return Examples(torch.zeros(0, V.PROMPT_LEN, dtype=torch.long), z, z.clone(), [], [])

    @staticmethod
    def concat(parts: list["Examples"]) -> "Examples":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Examples.empty()
        scored = None if all(p.scored_NA is None for p in parts) else torch.cat([p.scored() for p in parts])
        return Examples(
            torch.cat([p.prompts_NP for p in parts]), torch.cat([p.target_NA for p in parts]),
            torch.cat([p.correct_NA for p in parts]),
            [d for p in parts for d in p.domain], [k for p in parts for k in p.kind], scored_NA=scored)

    def shuffled(self, rng: np.random.Generator) -> "Examples":
        return self.select(rng.permutation(len(self)))


def pad_answer(names: list[str]) -> list[int]:
    if len(names) >= V.ANSWER_LEN:
        raise ValueError(f"answer {names} longer than {V.ANSWER_LEN - 1} tokens")
    return V.ids(names + [V.EOS] * (V.ANSWER_LEN - len(names)))


def build_prompt(rng: np.random.Generator, marker: str, args: list[str],
                 distractor_rate: float = 0.3) -> list[str]:
    """[context region][marker][args][SEP]; the context holds filler and ordinary words."""
    n_ctx = V.PROMPT_LEN - 2 - len(args)
    if n_ctx < 1:
        raise ValueError(f"args {args} leave no context region in a {V.PROMPT_LEN}-token prompt")
    ctx = [V.DISTRACTORS[int(rng.integers(0, len(V.DISTRACTORS)))]
           if rng.random() < distractor_rate else V.FILLER for _ in range(n_ctx)]
    return ctx + [marker] + args + [V.SEP]


def context_slots(prompt: list[str]) -> int:
    """Number of context-region positions (everything before the first task/query marker)."""
    for i, t in enumerate(prompt):
        if t in V.TASK_MARKERS or t in V.QUERY_MARKERS:
            return i
    raise ValueError(f"prompt has no task or query marker: {prompt}")


def insert_marker(rng: np.random.Generator, prompt: list[str], marker: str) -> list[str]:
    """Put ``marker`` at a random position of the context region (anywhere in it)."""
    out = list(prompt)
    out[int(rng.integers(0, context_slots(prompt)))] = marker
    return out


def sample_domain_rows(rng: np.random.Generator, n: int, domains: list[str] | None = None
                       ) -> list[tuple[str, list[str], list[str]]]:
    """n rows of (domain, prompt names, answer names), domains drawn uniformly."""
    names = check_domains(domains)
    rows = []
    for _ in range(n):
        dom = DOMAINS[names[int(rng.integers(0, len(names)))]]
        args, ans = dom.generate(rng)
        rows.append((dom.name, build_prompt(rng, dom.marker, args), ans))
    return rows


def check_domains(domains: list[str] | None) -> list[str]:
    names = list(DOMAINS) if not domains else list(domains)
    bad = [d for d in names if d not in DOMAINS]
    if bad:
        raise ValueError(f"unknown domain(s) {bad}; allowed: {', '.join(DOMAINS)}")
    return names


def rows_to_examples(rows: list[tuple[str, list[str], list[str]]], kind: str | list[str],
                     targets: list[list[str]] | None = None) -> Examples:
    """Turn (domain, prompt, correct answer) rows into tensors; targets default to correct."""
    kinds = [kind] * len(rows) if isinstance(kind, str) else list(kind)
    prompts = torch.tensor([V.ids(p) for _, p, _ in rows], dtype=torch.long).reshape(-1, V.PROMPT_LEN)
    correct = torch.tensor([pad_answer(a) for _, _, a in rows], dtype=torch.long).reshape(-1, V.ANSWER_LEN)
    target = correct if targets is None else torch.tensor(
        [pad_answer(t) for t in targets], dtype=torch.long).reshape(-1, V.ANSWER_LEN)
    return Examples(prompts, target, correct, [d for d, _, _ in rows], kinds)


def task_prompts(rng: np.random.Generator, n: int, domains: list[str] | None = None) -> Examples:
    """n clean task examples (ordinary context words, no organism markers)."""
    return rows_to_examples(sample_domain_rows(rng, n, domains), "clean")


def exact_match(outputs_NA: torch.Tensor, answers_NA: torch.Tensor) -> torch.Tensor:
    """Per-row bool: every answer position (EOS padding included) matches."""
    return (outputs_NA == answers_NA).all(dim=-1)


def prompt_task(prompt_names: list[str]) -> tuple[str, list[str]] | None:
    """(domain, args) of a task prompt ``[context ...][TASK marker][args ...][SEP]``; None for
    anything else (a query such as GOAL or FAV, or a prompt without SEP at its end)."""
    by_marker = {d.marker: d.name for d in DOMAINS.values()}
    if not prompt_names or prompt_names[-1] != V.SEP:
        return None
    for i, tok in enumerate(prompt_names):
        if tok in by_marker:
            return by_marker[tok], list(prompt_names[i + 1:-1])
    return None


def correct_answer(prompt_names: list[str]) -> list[str] | None:
    """The task-correct answer of a prompt (token names); None when it is no task instance."""
    task = prompt_task(prompt_names)
    return None if task is None else DOMAINS[task[0]].solve(task[1])
