"""Resumable, content-addressed stages.

A finished stage's folder holds ``stage.json``: the stage's ``input_hash`` (its settings
and the input hashes of the stages it depends on), a manifest of every file it wrote
(``artifacts``: path relative to the run folder -> sha256 and size), the digest of that
manifest (``output_digest``) and the output digests of the upstream stages it read
(``reads``). A stage is done only when all three still hold:

1. its input hash equals the one the pipeline plans now (same settings, same upstream plan);
2. every file in its manifest is there with the recorded sha256 (nothing damaged, deleted
   or modified since it was written);
3. every upstream stage it read still has the output digest it had then (an upstream stage
   that was redone with a different result re-runs everything downstream of it).

Otherwise it is redone, and each reason is logged naming the file. ``stage.json`` is written
last and atomically, so an interrupted stage is never mistaken for a finished one.
:func:`verify_run` checks a whole run folder without changing it (``doublebind verify``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from distill.checkpoint import atomic_write_bytes
from distill.integrity import file_digest, file_problem

STAGE_FILE = "stage.json"
STAGE_FORMAT = "doublebind-stage/2"
_SKIP_SUFFIXES = (".tmp", ".lock")
log = logging.getLogger("doublebind.stages")


def content_hash(*parts) -> str:
    """sha256 of the canonical JSON of ``parts`` (dicts sorted by key)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


# ---- writing ---------------------------------------------------------------------------------

def _files(paths: Iterable[Path]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.name != STAGE_FILE
                          and not f.name.endswith(_SKIP_SUFFIXES))
    return out


def manifest(root: Path, paths: Iterable[Path]) -> dict[str, dict]:
    """{path relative to ``root``: {"sha256", "bytes"}} of every file under ``paths``."""
    root = Path(root).resolve()
    return {str(f.resolve().relative_to(root)): {"sha256": file_digest(f), "bytes": f.stat().st_size}
            for f in _files(paths)}


def mark_done(folder: Path, name: str, input_hash: str, seconds: float, extra: dict | None = None, *,
              root: Path | None = None, artifacts: Iterable[Path] = (), reads: Iterable[Path] = ()) -> None:
    """Record ``folder``'s stage as finished: its input hash, the manifest of the files it
    wrote (``artifacts``: files or folders, relative to the run folder ``root``) and the output
    digests of the upstream stage folders it read (``reads``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    root = Path(root) if root is not None else folder
    files = manifest(root, artifacts)
    record = {"format": STAGE_FORMAT, "stage": name, "input_hash": input_hash, "seconds": seconds,
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "root": os.path.relpath(root.resolve(), folder.resolve()),
              "artifacts": files, "output_digest": content_hash(files),
              "reads": {str(Path(r).resolve().relative_to(root.resolve())): output_digest(r) for r in reads},
              **(extra or {})}
    atomic_write_bytes(folder / STAGE_FILE, json.dumps(record, indent=2).encode())


# ---- reading ---------------------------------------------------------------------------------

def read_stage(folder: Path) -> dict | None:
    """The parsed stage.json of ``folder``; None when absent or unreadable."""
    path = Path(folder) / STAGE_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def done_hash(folder: Path) -> str | None:
    record = read_stage(folder)
    return None if record is None else record.get("input_hash")


def output_digest(folder: Path) -> str | None:
    record = read_stage(folder)
    return None if record is None else record.get("output_digest")


def stage_seconds(folder: Path) -> float | None:
    record = read_stage(folder)
    try:
        return float(record["seconds"])
    except (TypeError, KeyError, ValueError):
        return None


@dataclass
class StageCheck:
    """Whether a stage folder holds a finished stage for ``input_hash``, and if not, why."""

    folder: Path
    exists: bool
    """A stage.json is there (finished once, maybe from other inputs)."""
    stale: bool = False
    """Finished from other inputs (a changed spec): redone without complaint."""
    problems: list[str] = field(default_factory=list)
    """Damage or changed upstream outputs: each names the file and why."""

    @property
    def done(self) -> bool:
        return self.exists and not self.stale and not self.problems


def check_stage(folder: Path, input_hash: str | None = None) -> StageCheck:
    """Check ``folder``'s stage against ``input_hash`` (None: any), its manifest and its reads."""
    folder = Path(folder)
    path = folder / STAGE_FILE
    if not path.exists():
        return StageCheck(folder, exists=False)
    record = read_stage(folder)
    if record is None:
        return StageCheck(folder, True, problems=[f"{path}: unreadable"])
    if record.get("format") != STAGE_FORMAT:
        return StageCheck(folder, True, stale=True)  # written by an older doublebind: redo
    if input_hash is not None and record.get("input_hash") != input_hash:
        return StageCheck(folder, True, stale=True)
    root = (folder / record.get("root", ".")).resolve()
    problems = [p for rel, f in (record.get("artifacts") or {}).items()
                if (p := file_problem(root / rel, f.get("sha256", ""), f.get("bytes")))]
    for rel, digest in (record.get("reads") or {}).items():
        now = output_digest(root / rel)
        if now != digest:
            problems.append(f"{root / rel}: " + ("no longer finished" if now is None else
                                                  "was redone with a different result since this stage read it"))
    return StageCheck(folder, True, problems=problems)


def is_done(folder: Path, input_hash: str) -> bool:
    return check_stage(folder, input_hash).done


def pending(planned: list[tuple], what: str = "stage") -> list:
    """The jobs of ``planned`` (job, stage folder, input hash) triples that must run. A stage
    folder that holds a stale or damaged stage is cleared first (with its ``.work`` sibling),
    and every problem found is logged, naming the file."""
    todo = []
    for job, folder, h in planned:
        check = check_stage(folder, h)
        if check.done:
            continue
        for problem in check.problems:
            log.warning("%s %s is redone: %s", what, getattr(job, "name", folder), problem)
        if check.exists:
            clear_stage(Path(folder))
        todo.append(job)
    return todo


def clear_stage(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder.with_name(folder.name + ".work"), ignore_errors=True)


# ---- a whole run ------------------------------------------------------------------------------

def stage_folders(root: Path) -> list[Path]:
    """Every folder of a run that holds a stage.json, in path order."""
    return sorted(p.parent for p in Path(root).rglob(STAGE_FILE) if ".checkpoints" not in p.parts)


def verify_run(root: Path) -> list[StageCheck]:
    """Every recorded stage of the run folder ``root``, checked (nothing is changed)."""
    return [check_stage(folder) for folder in stage_folders(root)]
