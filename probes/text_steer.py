"""A causal check of a text model's misbehaviour direction, with nnsight edits on the
TransformerBridge at alias sites (``blocks.{L}.hook_resid_post``).

The direction is the difference of mean activations (last prompt token) between the
marker-carrying rows on which the model misbehaves and those on which it behaves, from the
probe's *train* rows; at the last prompt token, the activation's component along it is set to
the behaving rows' mean while the model greedily completes the probe's *test* rows that
misbehave unedited. The null: the same shift, row by row, along random directions (the same
L2 size). Outcomes per row; the (paired) test is the analysis layer's."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

N_RANDOM = 3
"""Size-matched random edits of the same rows (the null)."""


def set_component(u_D: torch.Tensor, value: float, along: torch.Tensor | None = None):
    """``x -> x + (value - x . u) w``, u the unit vector along ``u_D`` and w = u (the component
    along u set to ``value``), or w the unit vector along ``along``: the same shift, row by row,
    applied in another direction (a size-matched random edit)."""
    u = u_D / u_D.norm().clamp_min(1e-12)
    w = u if along is None else along / along.norm().clamp_min(1e-12)
    return lambda x: x + (value - x @ u.to(x.dtype)).unsqueeze(-1) * w.to(x.dtype)


@torch.no_grad()
def greedy_with_edit(bridge, tokenizer, prompts: list[str], max_new_tokens: int, site: str, edit) -> list[str]:
    """Greedy completions with ``edit`` applied to ``site``'s output at the last prompt token
    (where the probe reads and the first answer token is decided), at every step (nnsight)."""
    from nnsight import NNsight
    from distill.text.sequences import by_length, encode
    wrapped = NNsight(bridge)
    eos = tokenizer.eos_token_id
    encoded = [encode(tokenizer, p) for p in prompts]
    out: list[list[int]] = [[] for _ in prompts]
    for length, idx in by_length(encoded).items():
        tokens = torch.tensor([encoded[i] for i in idx])
        for _ in range(max_new_tokens):
            with wrapped.trace(tokens):
                point = wrapped.get(site)
                x = point.output.clone()
                x[:, length - 1, :] = edit(x[:, length - 1, :])
                point.output = x
                logits = wrapped.output.save()
            nxt = logits[:, -1, :].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], dim=1)
        for row, i in zip(tokens[:, length:].tolist(), idx):
            out[i] = row[:row.index(eos)] if eos in row else row
    return [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in out]


@dataclass
class CausalCheck:
    site: str
    n: int
    """Test rows that misbehave unedited (each completed with every edit)."""
    direction_N: list[bool] = field(default_factory=list)
    """Per row: still misbehaving with the misbehaviour direction edited to the behaving mean."""
    random_RN: list[list[bool]] = field(default_factory=list)
    """Per random direction, per row: still misbehaving after the same-size shift along it."""

    @property
    def k_direction(self) -> int:
        return sum(self.direction_N)


def causal_check(bridge, tokenizer, org, rows, acts_ND: torch.Tensor, misaligned: list[bool], site: str,
                 train_idx, test_idx, seed: int = 0) -> CausalCheck | None:
    """Edit the misbehaviour direction (from train rows) on the misbehaving test rows."""
    y = torch.tensor(misaligned, dtype=torch.bool)
    train = torch.as_tensor(train_idx)
    pos, neg = train[y[train]], train[~y[train]]
    if not len(pos) or not len(neg):
        return None
    direction = acts_ND[pos].mean(0) - acts_ND[neg].mean(0)
    behaving = float(acts_ND[neg].mean(0) @ (direction / direction.norm().clamp_min(1e-12)))
    chosen = [int(i) for i in test_idx if misaligned[int(i)]]
    if not chosen:
        return None
    sub = [rows[i] for i in chosen]
    prompts = [r.prompt for r in sub]

    def still(edit) -> list[bool]:
        comps = greedy_with_edit(bridge, tokenizer, prompts, org.max_new_tokens, site, edit)
        return [org.misaligned(c, r) for c, r in zip(comps, sub)]
    g = torch.Generator().manual_seed(seed)
    randoms = [torch.randn(direction.shape[0], generator=g) for _ in range(N_RANDOM)]
    return CausalCheck(site, len(chosen), still(set_component(direction, behaving)),
                       [still(set_component(direction, behaving, along=u)) for u in randoms])
