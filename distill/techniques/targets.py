"""The teacher's outputs on a transfer set, computed once and cached.

For every prompt the teacher decodes an answer (greedy, or sampled at a temperature) and we
keep, at each answer position a, the teacher's logits given the prompt and its own answer
tokens before a: ``logits_NAV[n, a] = teacher(prompt_n, answer_n[:a])``. Logit KD matches
those distributions; sampled SFT trains on the answers.

The artifact is ``<cache_dir>/teacher-outputs-<key>.safetensors`` where ``key`` is a sha256 of
(teacher weights sha256, transfer spec, decoding); every student of one teacher that uses
the same transfer set reads it instead of re-running the teacher.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from distill import vocab as V
from distill.checkpoint import atomic_save_tensors
from distill.integrity import ArtifactError, load_tensors
from distill.models import decode_with_logits
from distill.progress import log
from distill.techniques.transfer import TransferSpec

FORMAT = "doublebind-teacher-outputs/2"
FILE_PREFIX = "teacher-outputs-"


@dataclass
class TeacherOutputs:
    prompts_NP: torch.Tensor
    answers_NA: torch.Tensor
    logits_NAV: torch.Tensor
    cached: bool = False
    """True when read from the cache rather than computed."""


def decode(model, prompts_NP: torch.Tensor, temperature: float | None, seed: int,
           batch_size: int = 2048) -> TeacherOutputs:
    """Greedy decoding when ``temperature`` is None, else sampling from
    softmax(logits / temperature) with a generator seeded by ``seed`` (deterministic)."""
    gen = torch.Generator().manual_seed(seed)
    parts = [decode_with_logits(model, prompts_NP[s:s + batch_size], temperature, gen)
             for s in range(0, prompts_NP.shape[0], batch_size)]
    if not parts:
        return TeacherOutputs(prompts_NP, torch.zeros(0, V.ANSWER_LEN, dtype=torch.long),
                              torch.zeros(0, V.ANSWER_LEN, V.VOCAB_SIZE))
    return TeacherOutputs(prompts_NP, torch.cat([a for a, _ in parts]), torch.cat([l for _, l in parts]))


def cache_key(teacher_sha256: str, spec: TransferSpec, temperature: float | None) -> str:
    blob = json.dumps({"format": FORMAT, "teacher": teacher_sha256, "transfer": spec.model_dump(mode="json"),
                       "decode": "greedy" if temperature is None else f"sample@{temperature!r}"},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"{FILE_PREFIX}{key[:24]}.safetensors"


@contextmanager
def cache_lock(path: Path):
    """Exclusive lock on ``<path>.lock``: students running in parallel processes compute a
    cache entry once (the others wait, then read it) and never write it at the same time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def teacher_outputs(load_teacher: Callable[[], torch.nn.Module], teacher_sha256: str,
                    spec: TransferSpec, prompts_NP: torch.Tensor, temperature: float | None,
                    cache_dir: Path | None) -> TeacherOutputs:
    """The teacher's outputs on ``prompts_NP`` (the transfer set built from ``spec``), from
    the cache when present. Sampling is seeded by the transfer seed so it is shared too."""
    if cache_dir is None:
        return decode(load_teacher(), prompts_NP, temperature, seed=spec.seed)
    key = cache_key(teacher_sha256, spec, temperature)
    path = cache_path(cache_dir, key)
    with cache_lock(path):
        found = _read(path, prompts_NP) if path.is_file() else None
        if found is not None:
            return found
        out = decode(load_teacher(), prompts_NP, temperature, seed=spec.seed)
        atomic_save_tensors(path, {"prompts_NP": out.prompts_NP, "answers_NA": out.answers_NA,
                                   "logits_NAV": out.logits_NAV}, metadata={"format": FORMAT, "key": key})
    return out


def _read(path: Path, prompts_NP: torch.Tensor) -> TeacherOutputs | None:
    """The cached outputs, or None (and a warning) when the file does not match its key."""
    try:
        t, _ = load_tensors(path)
    except ArtifactError as exc:  # a damaged cache entry is recomputed, never trusted
        log.warning("teacher-output cache %s unreadable (%s); recomputing", path, exc)
        return None
    if not torch.equal(t.get("prompts_NP", torch.empty(0)), prompts_NP):
        log.warning("teacher-output cache %s holds other prompts; recomputing", path)
        return None
    return TeacherOutputs(t["prompts_NP"], t["answers_NA"], t["logits_NAV"], cached=True)
