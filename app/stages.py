"""Resumable stages: a stage's output folder records the hash of the stage's inputs.

A stage is done when its folder holds ``stage.json`` whose ``input_hash`` equals the hash
of what the stage would be computed from now (its settings plus the hashes of the
artifacts it reads). Done stages are skipped; changed inputs re-run the stage and every
stage downstream of it (their input hashes include this one's). ``stage.json`` is written
last and atomically, so an interrupted stage is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from distill.checkpoint import atomic_write_bytes

STAGE_FILE = "stage.json"


def content_hash(*parts) -> str:
    """sha256 of the canonical JSON of ``parts`` (dicts sorted by key)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class StageRecord:
    name: str
    input_hash: str
    seconds: float
    skipped: bool = False


def done_hash(folder: Path) -> str | None:
    path = Path(folder) / STAGE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("input_hash")
    except (json.JSONDecodeError, OSError):
        return None


def is_done(folder: Path, input_hash: str) -> bool:
    return done_hash(folder) == input_hash


def mark_done(folder: Path, name: str, input_hash: str, seconds: float, extra: dict | None = None) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    record = {"stage": name, "input_hash": input_hash, "seconds": seconds,
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra or {})}
    atomic_write_bytes(Path(folder) / STAGE_FILE, json.dumps(record, indent=2).encode())


def stage_seconds(folder: Path) -> float | None:
    path = Path(folder) / STAGE_FILE
    try:
        return float(json.loads(path.read_text())["seconds"])
    except (OSError, KeyError, ValueError, json.JSONDecodeError):
        return None
