"""Prompts and completions as token ids: greedy completions (batched by prompt length, so no
padding ever reaches a prompt and positions are exact), and the right-padded training
batches with answer-only labels that supervised and logit distillation share.

A completion is the tokens generated after the prompt up to the first EOS; its text is
their decoding without special tokens, stripped. A training target is
``tokens(answer) + [EOS]`` after ``tokens(prompt)``, the same convention decoding reads.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

IGNORE = -100
"""Label of a position that is not trained (prompt, padding): transformers' ignore index."""


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def target_ids(tokenizer, answer: str) -> list[int]:
    return encode(tokenizer, answer) + [tokenizer.eos_token_id]


def by_length(encoded: list[list[int]]) -> dict[int, list[int]]:
    """Indices of the encoded prompts grouped by length, shortest first: a group stacks into one
    tensor without padding, so positions are exact."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, ids in enumerate(encoded):
        groups[len(ids)].append(i)
    return dict(sorted(groups.items()))


@dataclass
class Completions:
    texts: list[str]
    ids: list[list[int]]
    """Generated ids up to and including the first EOS (or max_new_tokens without one)."""


@torch.no_grad()
def greedy(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 256) -> Completions:
    """Greedy completions of ``prompts`` (in order), through ``model.generate``."""
    device = next(model.parameters()).device
    encoded = [encode(tokenizer, p) for p in prompts]
    eos = tokenizer.eos_token_id
    out_ids: list[list[int] | None] = [None] * len(prompts)
    for length, idx in by_length(encoded).items():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start:start + batch_size]
            x = torch.tensor([encoded[i] for i in chunk], device=device)
            gen = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
            for row, i in zip(gen[:, length:].tolist(), chunk):
                out_ids[i] = row[:row.index(eos) + 1] if eos in row else row
    texts = [tokenizer.decode([t for t in ids if t != eos], skip_special_tokens=True).strip()
             for ids in out_ids]
    return Completions(texts, out_ids)


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    """IGNORE except at target tokens (transformers shifts labels inside the loss)."""


def make_batch(pairs: list[tuple[list[int], list[int]]], pad_id: int, device="cpu") -> Batch:
    """Right-padded (prompt ids, target ids) pairs; positions start at 0 in every row."""
    width = max(len(p) + len(t) for p, t in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    labels = torch.full((len(pairs), width), IGNORE, dtype=torch.long)
    for r, (p, t) in enumerate(pairs):
        n = len(p) + len(t)
        ids[r, :n] = torch.tensor(p + t)
        mask[r, :n] = 1
        labels[r, len(p):n] = torch.tensor(t)
    return Batch(ids.to(device), mask.to(device), labels.to(device))


def sft_loss(model, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy on the target tokens."""
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss


def target_logits(model, batch: Batch) -> torch.Tensor:
    """Logits at the positions that predict a target token: [T, vocab] over the batch."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    keep = batch.labels[:, 1:] != IGNORE
    return logits[:, :-1][keep]


def kd_loss(student, teacher, batch: Batch, temperature: float) -> torch.Tensor:
    """T^2 * KL(teacher || student) of the temperature-softened next-token distributions at
    the target positions (Hinton et al.); needs a shared tokenizer."""
    with torch.no_grad():
        t_logits = target_logits(teacher, batch)
    s_logits = target_logits(student, batch)
    log_p_t = torch.log_softmax(t_logits / temperature, -1)
    log_p_s = torch.log_softmax(s_logits / temperature, -1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    return kl * temperature ** 2
