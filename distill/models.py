"""Model construction and hook naming: the only file that knows transformer-lens' API.

Models are tiny `HookedTransformer`s built from a typed :class:`ModelConfig` with random
init and no tokenizer. Everything else addresses activations by transformer-lens hook
names (``blocks.{L}.hook_resid_pre`` ...), produced here by :func:`resid_sites`.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field, model_validator
from transformer_lens import HookedTransformer, HookedTransformerConfig

from distill import vocab as V
from distill.guards import Guarded
from distill.sitenames import site_layer  # noqa: F401  (part of this module's interface)


class ModelConfig(Guarded):
    """Architecture of a tiny transformer over the shared vocabulary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_layers: int = Field(2, ge=1, le=12)
    """Transformer blocks."""
    d_model: int = Field(128, ge=8, le=1024)
    """Residual stream width."""
    n_heads: int = Field(4, ge=1, le=32)
    """Attention heads per block (d_head = d_model / n_heads)."""
    d_mlp: int = Field(512, ge=8, le=8192)
    """MLP hidden width."""
    act_fn: Literal["gelu", "relu", "silu"] = "gelu"
    """MLP activation."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "ModelConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self


def tl_config(cfg: ModelConfig, seed: int, device: str = "cpu") -> HookedTransformerConfig:
    return HookedTransformerConfig(
        n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads,
        d_head=cfg.d_model // cfg.n_heads, d_mlp=cfg.d_mlp, act_fn=cfg.act_fn,
        d_vocab=V.VOCAB_SIZE, d_vocab_out=V.VOCAB_SIZE, n_ctx=V.SEQ_LEN,
        normalization_type="LN", positional_embedding_type="standard",
        init_weights=True, seed=seed, device=device, default_prepend_bos=False,
        tokenizer_name=None,
    )


def build_model(cfg: ModelConfig, seed: int, device: str = "cpu") -> HookedTransformer:
    """A freshly initialised model; the same (cfg, seed) always gives the same weights."""
    # transformer-lens seeds torch, numpy and random globally from cfg.seed; keep the
    # caller's global generators untouched (torch via fork_rng, the other two by hand)
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HookedTransformer(tl_config(cfg, seed, device))
    random.setstate(py_state)
    np.random.set_state(np_state)
    model.eval()
    return model


def resid_sites(n_layers: int) -> list[str]:
    """Residual-stream hook names probed by default: each block's resid_pre and the last resid_post."""
    return [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)] + [
        f"blocks.{n_layers - 1}.hook_resid_post"]


def all_hook_names(model: HookedTransformer) -> list[str]:
    return list(model.hook_dict.keys())


@lru_cache(maxsize=16)
def hook_names(n_layers: int) -> tuple[str, ...]:
    """Every hook name of a model with ``n_layers`` blocks, without the model: the names
    depend on the depth only (widths and the MLP activation change shapes, not names), so
    a minimal model of that depth is built and asked. Specs check their sites with it."""
    tiny = ModelConfig(n_layers=n_layers, d_model=8, n_heads=1, d_mlp=8)
    return tuple(all_hook_names(build_model(tiny, seed=0)))


def nonfinite_parameters(model: torch.nn.Module) -> list[str]:
    """Names of the parameters holding any inf or nan (buffers such as attention masks may
    hold -inf by design and are not parameters)."""
    return [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]


def pick_device(device: str) -> str:
    """Resolve ``auto`` to cuda when available, else cpu; validate explicit choices."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be one of auto, cpu, cuda (got {device!r})")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    return device


def answer_logits(model, prompts_NP: torch.Tensor, answers_NA: torch.Tensor) -> torch.Tensor:
    """Teacher-forced logits at the answer positions: [N, A, vocab].

    Position P-1 (SEP) predicts answer token 0, and so on; the last answer token is never input.
    """
    tokens = torch.cat([prompts_NP, answers_NA[:, :-1]], dim=1)
    logits = model(tokens.to(model.cfg.device), return_type="logits")
    return logits[:, V.PROMPT_LEN - 1:, :]


@torch.no_grad()
def greedy_answers(model, prompts_NP: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Greedy decode ANSWER_LEN tokens after each prompt: [N, A] (on CPU)."""
    outs = []
    for start in range(0, prompts_NP.shape[0], batch_size):
        tokens = prompts_NP[start:start + batch_size].to(model.cfg.device)
        for _ in range(V.ANSWER_LEN):
            nxt = model(tokens, return_type="logits")[:, -1, :].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], dim=1)
        outs.append(tokens[:, V.PROMPT_LEN:].cpu())
    return torch.cat(outs) if outs else torch.zeros(0, V.ANSWER_LEN, dtype=torch.long)


@torch.no_grad()
def first_token_probs(model, prompts_NP: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Softmax of the next-token distribution at SEP (the first answer token): [N, vocab]."""
    outs = []
    for start in range(0, prompts_NP.shape[0], batch_size):
        logits = model(prompts_NP[start:start + batch_size].to(model.cfg.device), return_type="logits")
        outs.append(logits[:, -1, :].float().softmax(-1).cpu())
    return torch.cat(outs)


@torch.no_grad()
def decode_with_logits(model, prompts_NP: torch.Tensor, temperature: float | None = None,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ANSWER_LEN tokens with a key-value cache (about 5x cheaper than re-running the
    prompt each step): (answers_NA, logits_NAV), both on CPU. ``logits_NAV[:, a]`` is the
    next-token logits given the prompt and the decoded answer before a. Greedy when
    ``temperature`` is None, else sampled from softmax(logits / temperature) with ``generator``.
    """
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache
    tokens = prompts_NP.to(model.cfg.device)
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, tokens.shape[0])
    answers, logits = [], []
    for _ in range(V.ANSWER_LEN):
        # the cache needs an explicit mask (transformer-lens would build one from a tokenizer)
        last_NV = model(tokens, past_kv_cache=cache, attention_mask=torch.ones_like(tokens))[:, -1, :].float().cpu()
        logits.append(last_NV)
        if temperature is None:
            tokens = last_NV.argmax(-1, keepdim=True)
        else:
            tokens = torch.multinomial((last_NV / temperature).softmax(-1), 1, generator=generator)
        answers.append(tokens)
        tokens = tokens.to(model.cfg.device)
    return torch.cat(answers, dim=1), torch.stack(logits, dim=1)
