"""Integrity of every artifact doublebind writes: content digests recorded at write time and
checked at every read, so damaged data is never used silently.

Two mechanisms, both written and read by this module:

- **Self-verifying tensors.** :func:`save_tensors` stores the sha256 of the tensors (names,
  dtypes, shapes and bytes, in name order) in the safetensors header; :func:`load_tensors`
  recomputes it and refuses a file whose content no longer matches (a flipped byte, a
  truncation, a file from elsewhere).
- **File digests** (:func:`file_digest`, :func:`check_file`) for files written by other code
  (sae-lens' SAE folders, model weights, JSON), recorded by their writer in a manifest.

An :class:`ArtifactError` names the file and says why; the CLI turns it into one line.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch and safetensors are imported by the functions that read or write tensors:
    import torch  # JSON artifacts (a run's summary, the app's first page) need neither

HEADER_KEY = "doublebind"
"""The one safetensors header metadata key doublebind writes: a sorted JSON object holding
the caller's metadata and :data:`DIGEST_KEY`. One key, because safetensors keeps metadata in
a hash map whose order (so the file's bytes) would otherwise change from process to process."""
DIGEST_KEY = "tensors_sha256"


class ArtifactError(Exception):
    """A stored artifact is missing, unreadable, damaged or not what it claims to be."""


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    import torch
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # bytes without a copy (bfloat16 has no numpy dtype: view it as int16)
        arr = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
        h.update(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
    return h.hexdigest()


def save_tensors(path: Path | str, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Write ``tensors`` atomically (temp file, fsync, rename) with their content digest."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {**(metadata or {}), DIGEST_KEY: tensors_digest(tensors)}
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(meta, sort_keys=True)})
        with open(tmp, "rb+") as f:  # on disk before the rename
            os.fsync(f.fileno())
    except SafetensorError as exc:  # e.g. a full disk: say which file
        tmp.unlink(missing_ok=True)
        raise OSError(f"{path}: cannot write ({one_line(exc)})") from None
    os.replace(tmp, path)


def load_tensors(path: Path | str) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, header metadata) of a file written by :func:`save_tensors`, verified."""
    from safetensors import SafetensorError, safe_open
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(header[HEADER_KEY]) if HEADER_KEY in header else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: unreadable safetensors ({one_line(exc)[:200]})") from None
    recorded = meta.get(DIGEST_KEY) if isinstance(meta, dict) else None
    if recorded is None:
        raise ArtifactError(f"{path}: no content digest in its header (not written by this version "
                            "of doublebind); delete it to have it recomputed")
    actual = tensors_digest(tensors)
    if actual != recorded:
        raise ArtifactError(f"{path}: content sha256 {actual[:12]}... does not match the digest written "
                            f"with it ({recorded[:12]}...): damaged or modified")
    return tensors, meta


def read_json_object(path: Path | str, error: type[Exception] = ArtifactError, hint: str = "",
                     what: str = "") -> dict:
    """The JSON object in ``path``, or ``error`` naming the file and why (missing, not JSON,
    not an object); ``hint`` (how to recreate it) ends every message, ``what`` says what a
    missing file means."""
    path, tail = Path(path), f"; {hint}" if hint else ""
    if not path.is_file():
        raise error(f"{path}: missing{f' ({what})' if what else ''}{tail}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON, probably half-written ({one_line(exc)}){tail}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object{tail}")
    return data


def file_digest(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def file_problem(path: Path | str, sha256: str, size: int | None = None) -> str | None:
    """Why ``path`` is not the file recorded as (sha256, size); None when it is."""
    path = Path(path)
    if not path.is_file():
        return f"{path}: missing"
    if size is not None and path.stat().st_size != size:
        return f"{path}: {path.stat().st_size} bytes, {size} recorded: truncated or modified"
    digest = file_digest(path)
    if digest != sha256:
        return f"{path}: sha256 {digest[:12]}... differs from the recorded {sha256[:12]}...: damaged or modified"
    return None


def check_file(path: Path | str, sha256: str, size: int | None = None) -> None:
    """Raise :class:`ArtifactError` unless ``path`` is the file recorded as (sha256, size)."""
    problem = file_problem(path, sha256, size)
    if problem:
        raise ArtifactError(problem)
