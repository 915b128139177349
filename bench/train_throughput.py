"""Training throughput of doublebind's loop against a bare PyTorch loop, in one run.

Both loops train the default TeacherSpec model on the same pre-generated teacher batches
(organism fine-tune mix, default batch size), from the same initial weights:

* ``framework``: :func:`distill.train.train` (lr schedule, grad clipping, loss logging,
  progress bar, early-stop hooks) with :func:`distill.teacher.ce_on_answers`;
* ``bare``: ``loss = ce_on_answers(model, batch); opt.zero_grad(); loss.backward(); opt.step()``
  with a plain AdamW.

Rounds alternate framework/bare (order flipped every round) so load from other processes
hits both alike. Tokens/s use each loop's best round (the least disturbed); the ratio is
framework tokens/s over bare tokens/s (target >= 0.9), printed both from the best rounds and
as the median of per-round ratios (a check on noise: the two should agree).

Achieved GFLOP/s = (FLOPs of one training step, counted by torch's FlopCounterMode:
forward + backward matmuls) * steps / seconds, next to the machine's fp32 matmul peak
measured here with a square ``torch.matmul`` (2 n^3 FLOPs per product, best of a few).

Run: ``make bench`` or ``.venv/bin/python bench/train_throughput.py [--threads N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from distill import vocab as V  # noqa: E402
from distill.models import build_model, pick_device  # noqa: E402
from distill.organisms import get_organism  # noqa: E402
from distill.teacher import TeacherSpec, ce_on_answers  # noqa: E402
from distill.train import TrainConfig, step_rng, train  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="training steps per round and loop")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (after one warm-up round)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(),
                   help="torch threads for both loops and the peak (default: torch's default)")
    p.add_argument("--organism", default="backdoor", help="whose teacher batches to train on")
    p.add_argument("--peak-size", type=int, default=2048, help="n of the n x n fp32 matmul peak")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return p.parse_args(argv)


def teacher_batches(spec: TeacherSpec, organism: str, steps: int, device: str) -> tuple[list, float]:
    """The default teacher loop's batches for ``steps`` steps, and seconds spent making them."""
    org, cfg = get_organism(organism), spec.teacher_train
    t0 = time.perf_counter()
    batches = [org.teacher_data(step_rng(0, s, 1), cfg.batch_size, spec.organism_frac)
               for s in range(steps)]
    seconds = time.perf_counter() - t0
    for b in batches:
        b.prompts_NP, b.target_NA = b.prompts_NP.to(device), b.target_NA.to(device)
    return batches, seconds


def run_framework(model, batches, spec: TeacherSpec) -> float:
    cfg = spec.teacher_train.model_copy(update={"steps": len(batches)})
    t0 = time.perf_counter()
    train(model, lambda s: batches[s], ce_on_answers, cfg, desc="bench")
    _sync(model)
    return time.perf_counter() - t0


def run_bare(model, batches, spec: TeacherSpec) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=spec.teacher_train.lr)
    model.train()
    t0 = time.perf_counter()
    for batch in batches:
        loss = ce_on_answers(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(model)
    return time.perf_counter() - t0


def step_flops(model, batch) -> int:
    """FLOPs of one forward + backward pass, counted by torch (matmuls and attention)."""
    model = copy.deepcopy(model)
    with FlopCounterMode(display=False) as counter:
        ce_on_answers(model, batch).backward()
    return int(counter.get_total_flops())


def matmul_peak(n: int, device: str, reps: int = 4) -> float:
    """Best fp32 GFLOP/s of an n x n @ n x n product (2 n^3 FLOPs)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def _sync(model) -> None:
    if str(model.cfg.device).startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    spec = TeacherSpec()
    init = build_model(spec.model, 0, device)
    batches, data_s = teacher_batches(spec, args.organism, args.steps, device)
    tokens = args.steps * spec.teacher_train.batch_size * (V.SEQ_LEN - 1)  # inputs per step row
    run_framework(copy.deepcopy(init), batches, spec)  # warm-up (allocator, kernels)
    run_bare(copy.deepcopy(init), batches, spec)
    fw, bare = [], []
    for r in range(args.rounds):
        order = [("fw", run_framework), ("bare", run_bare)][:: 1 if r % 2 == 0 else -1]
        for name, fn in order:
            (fw if name == "fw" else bare).append(fn(copy.deepcopy(init), batches, spec))
    paired = statistics.median(b / f for f, b in zip(fw, bare))
    fw_s, bare_s = min(fw), min(bare)  # best of rounds: the least disturbed by other load
    flops = step_flops(init, batches[0]) * args.steps
    peak = matmul_peak(args.peak_size, device)
    out = {"device": device, "threads": args.threads, "model": spec.model.model_dump(),
           "batch_size": spec.teacher_train.batch_size, "steps_per_round": args.steps,
           "rounds": args.rounds, "framework_tokens_per_s": tokens / fw_s,
           "bare_tokens_per_s": tokens / bare_s, "ratio": bare_s / fw_s, "ratio_paired_median": paired,
           "framework_round_seconds": fw, "bare_round_seconds": bare,
           "data_ms_per_step": 1e3 * data_s / args.steps,
           "data_share_if_generated_inline": data_s / (data_s + fw_s),
           "gflop_per_step": flops / args.steps / 1e9, "achieved_gflops": flops / fw_s / 1e9,
           "matmul_peak_gflops": peak, "peak_fraction": flops / fw_s / 1e9 / peak}
    _report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


def _report(o: dict) -> None:
    print(f"device {o['device']}, {o['threads']} thread(s); model d_model={o['model']['d_model']} "
          f"n_layers={o['model']['n_layers']}; batch {o['batch_size']}; "
          f"{o['rounds']} rounds x {o['steps_per_round']} steps per loop")
    print(f"framework (distill.train.train): {o['framework_tokens_per_s']:>10.0f} tokens/s")
    print(f"bare PyTorch loop:               {o['bare_tokens_per_s']:>10.0f} tokens/s")
    print(f"ratio framework/bare: {o['ratio']:.3f} best-of-rounds, {o['ratio_paired_median']:.3f} "
          "median of paired rounds   (target >= 0.9)")
    print(f"achieved {o['achieved_gflops']:.2f} GFLOP/s ({o['gflop_per_step']:.3f} GFLOP/step) vs "
          f"fp32 matmul peak {o['matmul_peak_gflops']:.1f} GFLOP/s = {100 * o['peak_fraction']:.1f}% of peak")
    print(f"data generation: {o['data_ms_per_step']:.1f} ms/step "
          f"({100 * o['data_share_if_generated_inline']:.0f}% of a step if generated inline, "
          "as the teacher loop does; excluded from both loops above)")


if __name__ == "__main__":
    main()
