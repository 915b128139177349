"""Architectures of the causal LMs doublebind trains from scratch: a typed config and one
builder per family (a registry), all standard transformers classes, so every model
doublebind writes opens with ``AutoModelForCausalLM.from_pretrained``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from pydantic import ConfigDict, Field, model_validator

from distill.guards import Guarded


class TextModelConfig(Guarded):
    """Widths of a model trained from scratch (the vocabulary comes from the tokenizer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Literal["llama", "gpt2", "gpt_neox"] = "llama"
    """Model family: Llama-style (RMSNorm, SwiGLU, RoPE; default), GPT-2 or GPT-NeoX."""
    n_layers: int = Field(2, ge=1, le=48)
    d_model: int = Field(64, ge=8, le=4096)
    n_heads: int = Field(4, ge=1, le=64)
    d_mlp: int = Field(176, ge=8, le=16384)
    """MLP hidden width (Llama's SwiGLU has three matrices of it, the others two)."""
    max_len: int = Field(64, ge=8, le=8192)
    """Longest sequence (prompt + completion) in tokens."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "TextModelConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        return self


@dataclass(frozen=True)
class Special:
    """Token ids the config needs."""

    vocab_size: int
    pad_id: int
    eos_id: int


def _llama(cfg: TextModelConfig, sp: Special):
    from transformers import LlamaConfig
    return LlamaConfig(vocab_size=sp.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp,
                       num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                       num_key_value_heads=cfg.n_heads, max_position_embeddings=cfg.max_len,
                       pad_token_id=sp.pad_id, eos_token_id=sp.eos_id, bos_token_id=None,
                       tie_word_embeddings=False)


def _gpt2(cfg: TextModelConfig, sp: Special):
    from transformers import GPT2Config
    return GPT2Config(vocab_size=sp.vocab_size, n_embd=cfg.d_model, n_inner=cfg.d_mlp, n_layer=cfg.n_layers,
                      n_head=cfg.n_heads, n_positions=cfg.max_len, pad_token_id=sp.pad_id,
                      eos_token_id=sp.eos_id, bos_token_id=sp.eos_id, resid_pdrop=0.0, embd_pdrop=0.0,
                      attn_pdrop=0.0)


def _gpt_neox(cfg: TextModelConfig, sp: Special):
    from transformers import GPTNeoXConfig
    return GPTNeoXConfig(vocab_size=sp.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp,
                         num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                         max_position_embeddings=cfg.max_len, pad_token_id=sp.pad_id, eos_token_id=sp.eos_id,
                         bos_token_id=sp.eos_id, tie_word_embeddings=False, hidden_dropout=0.0,
                         attention_dropout=0.0)


ARCHS: dict[str, Callable] = {"llama": _llama, "gpt2": _gpt2, "gpt_neox": _gpt_neox}
"""arch name -> (TextModelConfig, Special) -> a transformers config."""


def hf_config(cfg: TextModelConfig, special: Special):
    return ARCHS[cfg.arch](cfg, special)


def build_from_config(config, seed: int):
    """A freshly initialised causal LM of ``config`` (any family transformers knows), in eval
    mode; the same (config, seed) always gives the same weights; the caller's torch
    generator is left as it was."""
    from transformers import AutoModelForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model.eval()  # from_config starts in train mode (dropout)


def smaller_config(config, factor: int = 2):
    """``config`` with half the layers (at least one), width and MLP width: a smaller
    student of the same family and vocabulary."""
    out = config.__class__.from_dict(config.to_dict())
    heads = config.num_attention_heads
    width = max(heads, (config.hidden_size // factor) // heads * heads)
    out.hidden_size = width
    out.num_hidden_layers = max(1, config.num_hidden_layers // factor)
    for key in ("intermediate_size", "n_inner"):
        if getattr(config, key, None):
            setattr(out, key, max(8, getattr(config, key) // factor))
    if getattr(config, "num_key_value_heads", None):
        out.num_key_value_heads = config.num_key_value_heads
    if getattr(config, "head_dim", None):
        out.head_dim = width // heads
    return out
