"""Training checkpoints: model + optimiser state in safetensors, scalars in JSON.

A checkpoint folder holds ``state.safetensors`` (model weights and every optimiser
tensor, flattened) and ``state.json`` (step, param-group hyper-parameters, extras). Both are
written atomically (temp file + rename), JSON last, so a folder with a readable JSON always
has the matching tensors. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from distill.integrity import ArtifactError, load_tensors, one_line, save_tensors

if TYPE_CHECKING:  # torch is imported by the checkpoint itself: atomic_write_bytes needs none
    import torch

TENSORS_FILE = "state.safetensors"
META_FILE = "state.json"


@dataclass
class Resumed:
    step: int
    extra: dict


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file, fsync, rename. A failed write (a full disk) removes the
    temp file and raises an OSError that names ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.replace(tmp, path)


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Atomic and self-verifying (:func:`distill.integrity.save_tensors`)."""
    save_tensors(path, tensors, metadata)


class Checkpointer:
    """Saves every ``every`` steps into ``folder``; :meth:`load` resumes from it."""

    def __init__(self, folder: Path | str, every: int = 200):
        self.folder, self.every = Path(folder), every

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, model, opt: torch.optim.Optimizer, step: int, extra: dict) -> None:
        import torch
        self.folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        opt_state = opt.state_dict()
        for idx, st in opt_state["state"].items():
            for name, val in st.items():
                tensors[f"opt.{idx}.{name}"] = val if torch.is_tensor(val) else torch.tensor(val)
        atomic_save_tensors(self.folder / TENSORS_FILE, tensors)
        groups = [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
                  for g in opt_state["param_groups"]]
        meta = {"step": step, "param_groups": groups, "extra": extra}
        atomic_write_bytes(self.folder / META_FILE, json.dumps(meta).encode())

    def load(self, model, opt: torch.optim.Optimizer) -> Resumed | None:
        meta_path, tensor_path = self.folder / META_FILE, self.folder / TENSORS_FILE
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            tensors, _ = load_tensors(tensor_path)
        except (ArtifactError, OSError, ValueError) as exc:  # a corrupt checkpoint is reported, never silently ignored
            raise ArtifactError(f"checkpoint {self.folder} is unreadable ({one_line(exc)}); delete it to restart") from None
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict] = {}
        for key, val in tensors.items():
            if key.startswith("opt."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = val
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        return Resumed(step=int(meta["step"]), extra=meta.get("extra", {}))

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
