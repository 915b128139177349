"""A text model on disk is a standard Hugging Face causal-LM folder: ``config.json``,
``model.safetensors``, ``tokenizer.json`` (+ the files ``save_pretrained`` writes) and,
when doublebind wrote it, a ``doublebind.json`` sidecar (role, organism, lineage, seed,
sha256 of weights and tokenizer).

Any such folder loads offline, with or without the sidecar: a user's own model is a plain
folder. When the sidecar is there its hashes are checked before anything is read, so a
damaged or modified model is never used silently. Weights are read from safetensors only
(``use_safetensors=True``: a folder with only ``pytorch_model.bin`` is refused, nothing is
unpickled); the tokenizer from ``tokenizer.json`` through ``PreTrainedTokenizerFast``
(``AutoTokenizer`` may pick a class that rewrites the pre-tokenizer).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from distill.checkpoint import atomic_write_bytes
from distill.integrity import ArtifactError, file_digest, one_line, read_json_object
from distill.models import nonfinite_parameters
from distill.text.offline import go_offline

SIDECAR = "doublebind.json"
HF_CONFIG = "config.json"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS = "model.safetensors"
FORMAT = "doublebind-hf/1"
HASHED = (WEIGHTS, TOKENIZER_FILE)
"""Files whose sha256 the sidecar records."""


class TextModelError(ArtifactError):
    """A text model folder is missing, not a causal-LM folder, or damaged."""


@dataclass
class TextRecord:
    """What the sidecar says about a model besides its weights."""

    role: str
    """base | teacher | student | negative-control"""
    seed: int
    organism: str | None = None
    lineage: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


@dataclass
class TextModel:
    """A loaded folder: the HF model (eval mode, on ``device``), its tokenizer, and the sidecar
    (None for a plain folder)."""

    folder: Path
    model: object
    tokenizer: object
    sidecar: dict | None

    @property
    def role(self) -> str | None:
        return self.sidecar.get("role") if self.sidecar else None


def is_text_folder(folder: Path | str) -> bool:
    """A Hugging Face model folder (its config.json names a ``model_type``), as opposed to a
    built-in synthetic-world folder (``distill.store``)."""
    path = Path(folder) / HF_CONFIG
    try:
        return "model_type" in json.loads(path.read_text())
    except (OSError, ValueError):
        return False


def _check_folder(folder: Path) -> dict | None:
    if not folder.is_dir():
        raise TextModelError(f"{folder}: no such model folder")
    cfg = read_json_object(folder / HF_CONFIG, TextModelError, what="not a Hugging Face model folder")
    if "model_type" not in cfg:
        raise TextModelError(f"{folder / HF_CONFIG}: no model_type (not a Hugging Face causal-LM config)")
    if not (folder / WEIGHTS).is_file() and not (folder / f"{WEIGHTS}.index.json").is_file():
        extra = " (only pytorch_model.bin: doublebind reads safetensors only, never pickle)" \
            if (folder / "pytorch_model.bin").is_file() else ""
        raise TextModelError(f"{folder / WEIGHTS}: missing{extra}")
    if not (folder / TOKENIZER_FILE).is_file():
        raise TextModelError(f"{folder / TOKENIZER_FILE}: missing (a fast tokenizer file is needed)")
    if not (folder / SIDECAR).is_file():
        return None
    side = read_json_object(folder / SIDECAR, TextModelError)
    if side.get("format") != FORMAT:
        raise TextModelError(f"{folder / SIDECAR}: format {side.get('format')!r}, expected {FORMAT!r}")
    for name, digest in (side.get("sha256") or {}).items():
        path = folder / name
        if not path.is_file():
            raise TextModelError(f"{path}: missing (recorded in {SIDECAR})")
        if file_digest(path) != digest:
            raise TextModelError(f"{path}: sha256 does not match {SIDECAR} ({str(digest)[:12]}...): "
                                 "truncated or modified")
    return side


def load_tokenizer(folder: Path | str):
    """The folder's fast tokenizer, with a pad token (the EOS token when it has none)."""
    go_offline()
    from transformers import PreTrainedTokenizerFast
    go_offline()  # quiets transformers' progress bars now that it is imported
    folder = Path(folder)
    try:
        tok = PreTrainedTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TextModelError(f"{folder / TOKENIZER_FILE}: unreadable tokenizer ({one_line(exc)[:200]})") from None
    if tok.eos_token is None:
        raise TextModelError(f"{folder}: the tokenizer has no EOS token (completions could never end)")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_text_model(folder: Path | str, device: str = "cpu") -> TextModel:
    """Load a local causal-LM folder offline (sidecar hashes checked first when present)."""
    go_offline()
    from transformers import AutoModelForCausalLM
    go_offline()
    folder = Path(folder)
    side = _check_folder(folder)
    tok = load_tokenizer(folder)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise TextModelError(f"{folder}: not loadable as a causal LM ({one_line(exc)[:300]})") from None
    bad = nonfinite_parameters(model)
    if bad:
        raise TextModelError(f"{folder / WEIGHTS}: non-finite weights ({', '.join(bad[:3])}): the model diverged")
    if model.get_input_embeddings().num_embeddings < len(tok):
        raise TextModelError(f"{folder}: the tokenizer has {len(tok)} tokens but the model embeds "
                             f"{model.get_input_embeddings().num_embeddings}")
    return TextModel(folder, model.to(device).eval(), tok, side)


def save_text_model(folder: Path | str, model, tokenizer, record: TextRecord) -> Path:
    """Write a standard HF folder and its sidecar (last, so a folder with a sidecar is complete)."""
    folder = Path(folder)
    bad = nonfinite_parameters(model)
    if bad:
        raise TextModelError(f"{folder}: refusing to save a model with non-finite weights ({', '.join(bad[:3])})")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SIDECAR).unlink(missing_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    side = {"format": FORMAT, "role": record.role, "organism": record.organism, "seed": record.seed,
            "lineage": record.lineage, "metrics": record.metrics,
            "sha256": {name: file_digest(folder / name) for name in HASHED}}
    atomic_write_bytes(folder / SIDECAR, json.dumps(side, indent=2).encode())
    return folder


def copy_plain(src: Path | str, dst: Path | str) -> Path:
    """A copy of a model folder without its sidecar: what a user's own model looks like."""
    dst = Path(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(SIDECAR), dirs_exist_ok=True)
    return dst
