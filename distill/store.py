"""A model on disk is a folder: ``model.safetensors`` + ``config.json``.

``config.json`` records the architecture, the vocabulary, the organism, the lineage
(base / teacher / technique and its parameters), the seed and the sha256 of the weights
file. Weights are written first (temp file + rename), the JSON last, so a folder with a
config always has the weights it describes. Loading verifies the hash and uses
safetensors only: nothing is ever unpickled. A model with an inf or nan weight is neither
saved nor loaded: diverged training must never reach an evaluation as a model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from distill import vocab as V
from distill.checkpoint import atomic_save_tensors, atomic_write_bytes
from distill.integrity import ArtifactError, file_digest, one_line, read_json_object
from distill.models import ModelConfig, build_model, nonfinite_parameters
from distill.organisms import ORGANISMS

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "doublebind-model/1"


class StoreError(ArtifactError):
    """A model folder is missing, truncated, tampered with or from another format."""


@dataclass
class ModelRecord:
    """Everything config.json says about a model besides its weights."""

    architecture: ModelConfig
    seed: int
    role: str
    """base | teacher | student | trusted (a weak trusted model) ..."""
    organism: str | None = None
    lineage: dict = field(default_factory=dict)
    """Where the model came from: base/teacher folders, technique, params, init."""
    metrics: dict = field(default_factory=dict)
    """Training facts worth keeping (steps, seconds, final loss)."""

    def to_json(self, sha256: str) -> dict:
        return {"format": FORMAT, "architecture": self.architecture.model_dump(),
                "vocab": V.TOKENS, "prompt_len": V.PROMPT_LEN, "answer_len": V.ANSWER_LEN,
                "seed": self.seed, "role": self.role, "organism": self.organism,
                "lineage": self.lineage, "metrics": self.metrics, "sha256": sha256}


sha256_file = file_digest
"""sha256 of a file (the digest recorded in config.json for the weights)."""


def save_model(folder: Path | str, model, record: ModelRecord) -> Path:
    folder = Path(folder)
    bad = nonfinite_parameters(model)
    if bad:
        raise StoreError(f"{folder}: refusing to save a model with non-finite weights "
                         f"({_tensors(bad)}): training diverged (lower the learning rate)")
    folder.mkdir(parents=True, exist_ok=True)
    # an overwrite interrupted between the two renames must not leave the old config
    # describing new weights: drop it first, so the folder reads as "config missing"
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    atomic_save_tensors(folder / WEIGHTS_FILE, model.state_dict(), metadata={"format": FORMAT})
    digest = sha256_file(folder / WEIGHTS_FILE)
    atomic_write_bytes(folder / CONFIG_FILE, json.dumps(record.to_json(digest), indent=2).encode())
    return folder


def read_config(folder: Path | str) -> dict:
    """The parsed, validated config.json of a model folder (weights not read)."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise StoreError(f"{folder}: no such model folder")
    cfg = read_json_object(path, StoreError, what="not a model folder, or the write was interrupted")
    if cfg.get("format") != FORMAT:
        raise StoreError(f"{path}: format {cfg.get('format')!r}, expected {FORMAT!r}")
    if cfg.get("vocab") != V.TOKENS:
        raise StoreError(f"{path}: vocabulary differs from this version of doublebind")
    if (cfg.get("prompt_len"), cfg.get("answer_len")) != (V.PROMPT_LEN, V.ANSWER_LEN):
        raise StoreError(f"{path}: prompt/answer lengths {cfg.get('prompt_len')}/{cfg.get('answer_len')} "
                         f"differ from this version's {V.PROMPT_LEN}/{V.ANSWER_LEN}")
    try:
        ModelConfig(**cfg["architecture"])
        int(cfg["seed"])
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise StoreError(f"{path}: bad or missing architecture/seed ({one_line(exc)})") from None
    if not isinstance(cfg.get("sha256"), str):
        raise StoreError(f"{path}: no sha256 of the weights recorded")
    if cfg.get("organism") is not None and cfg.get("organism") not in ORGANISMS:
        raise StoreError(f"{path}: unknown organism {cfg.get('organism')!r}; allowed: "
                         f"{', '.join(ORGANISMS)} (or null for a base)")
    return cfg


def _tensors(names: list[str]) -> str:
    return f"{len(names)} tensor{'s' if len(names) != 1 else ''}, e.g. {', '.join(names[:3])}"


def load_model(folder: Path | str, device: str = "cpu"):
    """(model, config dict). Verifies the weights' sha256 before reading them."""
    folder = Path(folder)
    cfg = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise StoreError(f"{weights}: missing")
    digest = sha256_file(weights)
    if digest != cfg.get("sha256"):
        raise StoreError(f"{weights}: sha256 {digest[:12]}... does not match config.json "
                         f"({str(cfg.get('sha256'))[:12]}...): truncated or modified")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise StoreError(f"{weights}: unreadable safetensors ({one_line(exc)})") from None
    model = build_model(ModelConfig(**cfg["architecture"]), seed=int(cfg["seed"]), device=device)
    try:
        model.load_state_dict({k: v.to(device) for k, v in state.items()})
    except RuntimeError as exc:
        raise StoreError(f"{weights}: weights do not fit the architecture in config.json "
                         f"({one_line(exc)[:300]})") from None
    bad = nonfinite_parameters(model)
    if bad:  # saved by a version without the guard: never evaluate or train from it
        raise StoreError(f"{weights}: non-finite weights ({_tensors(bad)}): the model diverged "
                         "in training; retrain it")
    model.eval()
    return model, cfg


def weights_hash(model) -> str:
    """sha256 over the model's tensors in name order (for same-seed-same-weights checks)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
