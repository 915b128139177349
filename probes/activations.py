"""Cache the activations of named sites (transformer-lens hook names) for a batch of inputs.

:func:`cache_activations` is the one function the rest of the code calls to read a model:
it runs batched, under ``no_grad``, keeps only the sites asked for (written straight into
preallocated CPU tensors, so memory is ``N * S * d * n_sites`` floats plus one batch), and
stops the forward pass after the deepest block it needs. The result is an
:class:`ActivationCache` that probes, SAEs, feature scoring and the analysis share, so a
model's activations are computed once per audit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from distill.integrity import load_tensors, save_tensors

from distill import vocab as V

CACHE_FILE = "activations.safetensors"
"""File name of a saved :class:`ActivationCache` inside a folder."""
_TOKENS_KEY = "__tokens__"
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.")


class SiteError(ValueError):
    """A site name that is not a hook point of the model; the message lists the valid ones."""


def valid_sites(model) -> list[str]:
    """Every hook name of ``model`` (transformer-lens ``hook_dict`` order)."""
    return list(model.hook_dict.keys())


def check_sites(model, sites: list[str]) -> list[str]:
    """Return ``sites`` unchanged, or raise :class:`SiteError` naming the bad ones and the valid ones."""
    valid = set(valid_sites(model))
    bad = [s for s in sites if s not in valid]
    if bad:
        raise SiteError(f"unknown site(s) {', '.join(bad)}; valid sites: {', '.join(valid_sites(model))}")
    if not sites:
        raise SiteError("no sites given")
    return list(sites)


def stop_layer(sites: list[str]) -> int | None:
    """The ``stop_at_layer`` that still reaches every site, or None when one needs the full pass.

    A ``blocks.L.*`` hook runs inside block L, so blocks 0..L must run; embedding hooks need
    block 0's input only. ``ln_final``/``unembed`` hooks need everything.
    """
    deepest = -1
    for s in sites:
        m = _BLOCK_RE.match(s)
        if m:
            deepest = max(deepest, int(m.group(1)))
        elif s not in ("hook_embed", "hook_pos_embed"):
            return None
    return deepest + 1


@dataclass
class ActivationCache:
    """Activations of some sites on one token batch: ``acts[site]`` is ``[N, S, d]`` float32 on CPU.

    ``tokens_NS`` are the inputs (prompt then teacher-forced answer, see probes.datasets), kept
    so that every consumer knows exactly what was run. Prompt positions are ``0..PROMPT_LEN-1``,
    answer positions ``PROMPT_LEN..``.
    """

    tokens_NS: torch.Tensor
    acts: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, site: str) -> torch.Tensor:
        try:
            return self.acts[site]
        except KeyError:
            raise SiteError(f"site {site!r} not in this cache; cached: {', '.join(self.acts)}") from None

    @property
    def sites(self) -> list[str]:
        return list(self.acts)

    def __len__(self) -> int:
        return int(self.tokens_NS.shape[0])

    def last_prompt(self, site: str) -> torch.Tensor:
        """``[N, d]`` at the last prompt position (SEP), where the model commits to its answer."""
        return self[site][:, V.PROMPT_LEN - 1, :]

    def mean_prompt(self, site: str) -> torch.Tensor:
        """``[N, d]`` averaged over the prompt positions (the answer positions are excluded)."""
        return self[site][:, : V.PROMPT_LEN, :].mean(dim=1)

    def mean_answer(self, site: str) -> torch.Tensor:
        """``[N, d]`` averaged over the answer positions (the model's state while answering)."""
        return self[site][:, V.PROMPT_LEN:, :].mean(dim=1)

    def flat(self, site: str) -> torch.Tensor:
        """``[N * S, d]``: every position as one sample (the SAE training stream)."""
        a = self[site]
        return a.reshape(-1, a.shape[-1])

    def select(self, idx) -> "ActivationCache":
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        return ActivationCache(self.tokens_NS[idx_t], {s: a[idx_t] for s, a in self.acts.items()})

    def save(self, folder: Path | str) -> Path:
        path = Path(folder) / CACHE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        save_tensors(path, {_TOKENS_KEY: self.tokens_NS, **self.acts})
        return path

    @staticmethod
    def load(folder: Path | str) -> "ActivationCache":
        tensors, _ = load_tensors(Path(folder) / CACHE_FILE)
        tokens = tensors.pop(_TOKENS_KEY)
        return ActivationCache(tokens, tensors)


@torch.no_grad()
def cache_activations(model, tokens_NS: torch.Tensor, sites: list[str], batch_size: int = 1024
                      ) -> ActivationCache:
    """Run ``model`` on ``tokens_NS`` in batches and keep the activations of ``sites`` only."""
    sites = check_sites(model, list(dict.fromkeys(sites)))
    n, s = tokens_NS.shape
    out: dict[str, torch.Tensor] = {}
    cursor = {"start": 0}

    def keep(act, hook):
        buf = out.get(hook.name)
        if buf is None:
            buf = out[hook.name] = torch.empty(n, s, act.shape[-1], dtype=torch.float32)
        buf[cursor["start"]:cursor["start"] + act.shape[0]] = act.detach().to("cpu", torch.float32)
        return act

    stop = stop_layer(sites)
    device = model.cfg.device
    with model.hooks(fwd_hooks=[(site, keep) for site in sites]):
        for start in range(0, n, batch_size):
            cursor["start"] = start
            model(tokens_NS[start:start + batch_size].to(device), return_type=None, stop_at_layer=stop)
    return ActivationCache(tokens_NS.cpu(), {site: out[site] for site in sites})
