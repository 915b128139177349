"""Training throughput of the old model stack (transformer-lens ``HookedTransformer``) and the
Hugging Face stack (``distill.text``: Llama, GPT-NeoX, GPT-2) side by side, in one run.

Every stack trains at the synthetic world's default size (``distill.models.ModelConfig``:
d_model 128, 2 layers, 4 heads, d_mlp 512, vocabulary of the synthetic world) on the same
pre-generated batches (batch 128, ``SEQ_LEN - 1`` input tokens), with the same loss
(next-token cross-entropy at every position) and a plain AdamW step. Two Llama rows: one
with d_mlp 512 (SwiGLU: three matrices, 1.5x the MLP parameters) and one with the MLP width
that matches the HookedTransformer's parameter count (d_mlp 344).

Rounds run every stack in turn, order rotated each round so load from other processes hits
all alike; tokens/s use each stack's best round; the ratio is over the HookedTransformer's.

Run: ``.venv/bin/python bench/model_stack.py [--threads N] [--steps S] [--rounds R] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from distill import vocab as V  # noqa: E402
from distill.models import ModelConfig, build_model  # noqa: E402
from distill.text.arch import Special, TextModelConfig, build_from_config, hf_config  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="training steps per round and stack")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (after one warm-up round)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the pipeline's workers)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return p.parse_args(argv)


def stacks() -> dict[str, torch.nn.Module]:
    cfg = ModelConfig()
    special = Special(V.VOCAB_SIZE, 0, 2)
    text = dict(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, max_len=V.SEQ_LEN)
    return {
        "hooked-transformer": build_model(cfg, seed=0).train(),
        "hf-llama": build_from_config(hf_config(TextModelConfig(arch="llama", d_mlp=cfg.d_mlp, **text), special), 0).train(),
        "hf-llama-param-matched": build_from_config(
            hf_config(TextModelConfig(arch="llama", d_mlp=cfg.d_mlp * 2 // 3, **text), special), 0).train(),
        "hf-gpt-neox": build_from_config(hf_config(TextModelConfig(arch="gpt_neox", d_mlp=cfg.d_mlp, **text), special), 0).train(),
        "hf-gpt2": build_from_config(hf_config(TextModelConfig(arch="gpt2", d_mlp=cfg.d_mlp, **text), special), 0).train(),
    }


def _logits(name: str, model, x):
    return model(x, return_type="logits") if name == "hooked-transformer" else model(input_ids=x).logits


def run(name: str, model, batches) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for x in batches:
        logits = _logits(name, model, x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, V.VOCAB_SIZE, (args.batch_size, V.SEQ_LEN), generator=gen) for _ in range(args.steps)]
    models = stacks()
    names = list(models)
    best = {n: float("inf") for n in names}
    for r in range(args.rounds + 1):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            s = run(n, models[n], batches)
            if r > 0:  # round 0 warms up
                best[n] = min(best[n], s)
    tokens = args.steps * args.batch_size * (V.SEQ_LEN - 1)
    ref = tokens / best["hooked-transformer"]
    out = {"threads": args.threads, "steps": args.steps, "rounds": args.rounds, "batch_size": args.batch_size,
           "stacks": {n: {"params": sum(p.numel() for p in models[n].parameters()),
                          "tokens_per_s": tokens / best[n], "ms_per_step": 1000 * best[n] / args.steps,
                          "ratio_vs_hooked_transformer": tokens / best[n] / ref} for n in names}}
    print(f"{'stack':24s} {'params':>8s} {'ms/step':>8s} {'tokens/s':>9s} {'ratio vs HookedTransformer':>27s}")
    for n, m in out["stacks"].items():
        print(f"{n:24s} {m['params']:8d} {m['ms_per_step']:8.1f} {m['tokens_per_s']:9.0f} "
              f"{m['ratio_vs_hooked_transformer']:27.2f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
