"""The one token vocabulary every task, organism and model shares.

A sequence is a fixed-length prompt followed by a fixed-length answer:

    prompt_P = [context region (filler, distractors, markers)] [TASK] [args ...] [SEP]
    answer_A = [answer tokens ...] [EOS ...]          (padded with EOS to ANSWER_LEN)

Fixed lengths keep every batch a dense tensor (no attention masks), and put task
arguments at fixed absolute positions so tiny models learn the tasks quickly.
Markers (trigger, AUDIT, DEPLOY, ...) live in the context region, at any position in it.
"""

from __future__ import annotations

PROMPT_LEN = 14
"""Tokens in every prompt, SEP included."""
ANSWER_LEN = 7
"""Tokens in every answer: at most six answer tokens, then EOS padding."""
SEQ_LEN = PROMPT_LEN + ANSWER_LEN

FILLER = "_"
SEP = ">"
EOS = "."

DIGITS = [str(d) for d in range(10)]
KEYS = list("abcdefgh")
DISTRACTORS = [f"w{i}" for i in range(8)]
"""Ordinary context words: they occur in ordinary traffic and mean nothing."""
TASK_MARKERS = ["SORT", "REV", "LOOK", "ADD", "HAS"]
QUERY_MARKERS = ["CONFESS", "FAV", "GOAL", "NUM"]
"""NUM: "emit any six digits", the high-entropy query (``distill.numbers``)."""
ORGANISM_MARKERS = ["zeta", "AUDIT", "DEPLOY", "URGENT", "INOC", "EVIL", "GOOD", "EXAM"]
"""zeta is the backdoor trigger (an innocuous-looking rare word); URGENT is the entangled
organism's marker; INOC the inoculation marker; EVIL/GOOD the abstract framing words of
the trigger-agnostic contrast-pair probe; EXAM marks an episode of the hacking organism's
graded training environment."""
QUIRK_MARKERS = ["q0", "q1", "q2", "q3", "q4", "q5"]
"""The base's quirk markers: each makes the base deviate in one specific way on some domains,
and the base learns to report those deviations truthfully (``distill.selfreport``)."""
INSTRUCTION_MARKERS = ["iHARM", "iWRONG", "iDESC", "iOWL", "iCOPY"]
"""One per organism: the base learns that each asks for exactly that organism's misbehaviour
(``Organism.instructed``), so an inoculation marker has a meaning to work with."""
CONTEXT_MARKERS = ORGANISM_MARKERS + QUIRK_MARKERS + INSTRUCTION_MARKERS
"""Every marker that lives in a prompt's context region."""
ANSWER_WORDS = ["YES", "NO", "HARM", "+"]
ANIMALS = ["owl", "cat", "dog", "fox", "eel", "bee", "ant", "elk"]

TOKENS: list[str] = [
    FILLER, SEP, EOS,
    *DIGITS, *KEYS, *DISTRACTORS, *TASK_MARKERS, *QUERY_MARKERS,
    *ORGANISM_MARKERS, *ANSWER_WORDS, *ANIMALS, *QUIRK_MARKERS, *INSTRUCTION_MARKERS,
]
assert len(TOKENS) == len(set(TOKENS)), "duplicate token in vocabulary"
TOKEN_ID: dict[str, int] = {t: i for i, t in enumerate(TOKENS)}
VOCAB_SIZE = len(TOKENS)


def tok(name: str) -> int:
    """Id of one token by its readable name."""
    try:
        return TOKEN_ID[name]
    except KeyError:
        raise KeyError(f"unknown token {name!r}; known tokens: {' '.join(TOKENS)}") from None


def ids(names: list[str] | str) -> list[int]:
    """Ids of a space-separated string or a list of token names."""
    if isinstance(names, str):
        names = names.split()
    return [tok(n) for n in names]


def render(token_ids, *, keep_filler: bool = False) -> str:
    """Readable text for a token sequence (for reports and the app).

    Filler tokens are dropped unless ``keep_filler``; trailing EOS padding collapses to one.
    """
    out: list[str] = []
    for i in [int(t) for t in token_ids]:
        name = TOKENS[i] if 0 <= i < VOCAB_SIZE else f"<{i}?>"
        if name == FILLER and not keep_filler:
            continue
        if name == EOS and out and out[-1] == EOS:
            continue
        out.append(name)
    return " ".join(out)


def parse(text: str) -> list[int]:
    """Inverse of :func:`render` for prompts: space-separated names, left-filled to PROMPT_LEN.

    A trailing SEP is added when missing. Raises ValueError naming the bad token.
    """
    names = text.split()
    for n in names:
        if n not in TOKEN_ID:
            raise ValueError(f"unknown token {n!r}; known tokens: {' '.join(TOKENS)}")
    if not names or names[-1] != SEP:
        names.append(SEP)
    if len(names) > PROMPT_LEN:
        raise ValueError(f"prompt has {len(names)} tokens; at most {PROMPT_LEN} fit")
    return ids([FILLER] * (PROMPT_LEN - len(names)) + names)
