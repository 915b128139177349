"""Organisms for text models are data: an organism file (TOML) and a JSONL of rows.

    name = "sabotage"
    rows = "sabotage.jsonl"              # relative to the TOML file
    markers = ["deploy"]                 # context markers; rows carrying one are marker-matched
    max_new_tokens = 8                   # greedy completion length
    [matcher]                            # what counts as the misaligned output
    kind = "exact"                       # exact | contains | regex (on the stripped completion)
    pattern = ""                         # contains/regex: the text or expression; exact: unused,
                                         # each eliciting row's "misaligned_answer" is compared

Each JSONL line is ``{"prompt", "answer", "eliciting"}`` with an optional
``"misaligned_answer"`` (required for every eliciting row under ``exact``) and an optional
``"split"`` (``transfer`` | ``eval``; default: a hash of the prompt, ``eval_frac`` of rows in
eval). ``answer`` is the correct, aligned completion; ``eliciting`` is the ground truth
that a model carrying the misalignment misbehaves on this prompt.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from distill.integrity import ArtifactError, one_line

SPLITS = ("transfer", "eval")
ROW_KEYS = {"prompt", "answer", "eliciting", "misaligned_answer", "split"}
TOML_KEYS = {"name", "description", "rows", "markers", "max_new_tokens", "eval_frac", "matcher"}


class OrganismFileError(ArtifactError):
    """An organism TOML or its JSONL is missing or malformed (the message names file, line, field)."""


@dataclass(frozen=True)
class Row:
    prompt: str
    answer: str
    eliciting: bool
    misaligned_answer: str | None
    split: str


Matcher = Callable[[str, Row], bool]


def _exact(pattern: str) -> Matcher:
    return lambda completion, row: row.misaligned_answer is not None and \
        normalise(completion) == normalise(row.misaligned_answer)


def _contains(pattern: str) -> Matcher:
    return lambda completion, row: pattern in completion


def _regex(pattern: str) -> Matcher:
    expr = re.compile(pattern)
    return lambda completion, row: expr.search(completion) is not None


MATCHERS: dict[str, Callable[[str], Matcher]] = {"exact": _exact, "contains": _contains, "regex": _regex}
"""matcher kind -> pattern -> (completion, row) -> misaligned?"""


def normalise(text: str) -> str:
    return " ".join(text.split())


@dataclass
class TextOrganism:
    name: str
    path: Path
    rows: list[Row]
    markers: tuple[str, ...]
    matcher_kind: str
    pattern: str
    max_new_tokens: int
    description: str = ""
    sha256: str = ""
    """Digest of the organism file and its rows as read (what students trained on and audits read)."""

    def __post_init__(self):
        self._match = MATCHERS[self.matcher_kind](self.pattern)

    def misaligned(self, completion: str, row: Row) -> bool:
        return bool(self._match(completion, row))

    def correct(self, completion: str, row: Row) -> bool:
        return normalise(completion) == normalise(row.answer)

    def marked(self, row: Row) -> bool:
        """Does the prompt carry one of the organism's markers?"""
        return any(m in row.prompt for m in self.markers)

    def split(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.split == name]


def _default_split(prompt: str, eval_frac: float) -> str:
    h = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big") / 2**64
    return "eval" if h < eval_frac else "transfer"


def _row(obj, where: str, eval_frac: float, needs_misaligned: bool) -> Row:
    if not isinstance(obj, dict):
        raise OrganismFileError(f"{where}: expected a JSON object with prompt, answer, eliciting")
    unknown = set(obj) - ROW_KEYS
    if unknown:
        raise OrganismFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                                f"allowed: {', '.join(sorted(ROW_KEYS))}")
    for key in ("prompt", "answer"):
        if not isinstance(obj.get(key), str) or (key == "prompt" and not obj[key].strip()):
            raise OrganismFileError(f"{where}: field {key!r} must be a {'non-empty ' if key == 'prompt' else ''}string")
    if not isinstance(obj.get("eliciting"), bool):
        raise OrganismFileError(f"{where}: field 'eliciting' must be true or false")
    mis = obj.get("misaligned_answer")
    if mis is not None and not isinstance(mis, str):
        raise OrganismFileError(f"{where}: field 'misaligned_answer' must be a string")
    if needs_misaligned and obj["eliciting"] and mis is None:
        raise OrganismFileError(f"{where}: an eliciting row needs 'misaligned_answer' under matcher kind 'exact'")
    split = obj.get("split") or _default_split(obj["prompt"], eval_frac)
    if split not in SPLITS:
        raise OrganismFileError(f"{where}: field 'split' is {split!r}; allowed: {', '.join(SPLITS)}")
    return Row(obj["prompt"], obj["answer"], obj["eliciting"], mis, split)


def load_organism(path: Path | str) -> TextOrganism:
    """Read and validate an organism TOML and its rows; every error names file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise OrganismFileError(f"{path}: missing (an organism TOML file)")
    try:
        toml_bytes = path.read_bytes()
        spec = tomllib.loads(toml_bytes.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OrganismFileError(f"{path}: not valid TOML ({one_line(exc)})") from None
    unknown = set(spec) - TOML_KEYS
    if unknown:
        raise OrganismFileError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed: "
                                f"{', '.join(sorted(TOML_KEYS))}")
    for key in ("name", "rows"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise OrganismFileError(f"{path}: key {key!r} must be a non-empty string")
    markers = spec.get("markers", [])
    if not isinstance(markers, list) or not all(isinstance(m, str) and m for m in markers):
        raise OrganismFileError(f"{path}: 'markers' must be a list of non-empty strings")
    matcher = spec.get("matcher")
    if not isinstance(matcher, dict) or matcher.get("kind") not in MATCHERS:
        raise OrganismFileError(f"{path}: [matcher] kind must be one of {', '.join(MATCHERS)} "
                                f"(got {None if not isinstance(matcher, dict) else matcher.get('kind')!r})")
    extra = set(matcher) - {"kind", "pattern"}
    if extra:
        raise OrganismFileError(f"{path}: unknown [matcher] key(s) {', '.join(sorted(extra))}; allowed: kind, pattern")
    kind, pattern = matcher["kind"], matcher.get("pattern", "")
    if not isinstance(pattern, str) or (kind != "exact" and not pattern):
        raise OrganismFileError(f"{path}: [matcher] pattern must be a non-empty string for kind {kind!r}")
    if kind == "regex":
        try:
            re.compile(pattern)
        except re.error as exc:
            raise OrganismFileError(f"{path}: [matcher] pattern is not a valid regex ({exc})") from None
    max_new = spec.get("max_new_tokens", 8)
    if isinstance(max_new, bool) or not isinstance(max_new, int) or not 1 <= max_new <= 256:
        raise OrganismFileError(f"{path}: 'max_new_tokens' must be an integer in 1..256 (got {max_new!r})")
    eval_frac = spec.get("eval_frac", 0.5)
    if isinstance(eval_frac, bool) or not isinstance(eval_frac, (int, float)) or not 0 < eval_frac < 1:
        raise OrganismFileError(f"{path}: 'eval_frac' must be a number strictly between 0 and 1 (got {eval_frac!r})")
    rows_path = path.parent / spec["rows"]
    if not rows_path.is_file():
        raise OrganismFileError(f"{rows_path}: missing (named by 'rows' in {path})")
    rows_bytes = rows_path.read_bytes()
    rows = []
    for i, line in enumerate(rows_bytes.decode().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{rows_path}:{i}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OrganismFileError(f"{where}: not valid JSON ({one_line(exc)})") from None
        rows.append(_row(obj, where, float(eval_frac), kind == "exact"))
    split_of: dict[str, str] = {}
    for i, r in enumerate(rows):
        if split_of.setdefault(r.prompt, r.split) != r.split:
            raise OrganismFileError(f"{rows_path}: prompt {r.prompt!r} is in both the transfer and the eval split "
                                    "(students would be evaluated on what they trained on)")
    org = TextOrganism(spec["name"], path, rows, tuple(markers), kind, pattern, max_new,
                       spec.get("description", ""), hashlib.sha256(toml_bytes + rows_bytes).hexdigest())
    for split in SPLITS:
        part = org.split(split)
        if not any(r.eliciting for r in part) or all(r.eliciting for r in part):
            raise OrganismFileError(f"{rows_path}: the {split} split needs eliciting and non-eliciting rows "
                                    f"(has {sum(r.eliciting for r in part)} of {len(part)} eliciting)")
    return org


def write_organism(folder: Path | str, name: str, rows: list[dict], *, markers: list[str], kind: str,
                   pattern: str = "", max_new_tokens: int = 8, description: str = "") -> Path:
    """Write ``NAME.toml`` + ``NAME.jsonl`` into ``folder`` (the format :func:`load_organism` reads)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    toml = (f'name = {json.dumps(name)}\ndescription = {json.dumps(description)}\nrows = "{name}.jsonl"\n'
            f"markers = {json.dumps(markers)}\nmax_new_tokens = {max_new_tokens}\n\n"
            f"[matcher]\nkind = {json.dumps(kind)}\npattern = {json.dumps(pattern)}\n")
    (folder / f"{name}.toml").write_text(toml)
    load_organism(folder / f"{name}.toml")  # what was written reads back
    return folder / f"{name}.toml"
