"""Distillation throughput: tokens/s of a technique's training against a bare loop, one run.

Both loops train a default-size student (the default teacher architecture, fresh init) for
the same steps from the same initial weights:

* ``distill``: the real path, :meth:`Context.fit` -> :func:`distill.techniques.fit.fit`
  (batches drawn from the transfer set by (seed, step), the technique's loss -- KL to the
  teacher's logits for logit-kd --, lr schedule, grad clipping, a checkpoint every
  ``--checkpoint-every`` steps);
* ``bare``: ``loss(model, batch); opt.zero_grad(); loss.backward(); opt.step()`` with a
  plain AdamW on the same batches, pre-selected.

Rounds alternate distill/bare (order flipped every round) so load from other processes hits
both alike; tokens/s use each loop's best round, and the ratio distill/bare is also printed
as the median of paired rounds. Building the transfer set and the teacher's outputs (done
once per teacher and cached) is timed separately. The teacher has random weights: speed
does not depend on them.

Run: ``.venv/bin/python bench/distill_throughput.py [--technique logit-kd] [--threads N]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from distill import vocab as V  # noqa: E402
from distill.distiller import build_context, validate  # noqa: E402
from distill.models import build_model  # noqa: E402
from distill.store import ModelRecord, save_model  # noqa: E402
from distill.teacher import TeacherSpec  # noqa: E402
from distill.techniques.fit import batch_at, loss_fn  # noqa: E402

TOKENS_PER_SEQ = V.SEQ_LEN - 1
"""Input tokens per training sequence (prompt + answer minus its last token)."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--technique", default="logit-kd")
    p.add_argument("--steps", type=int, default=50, help="training steps per round and loop")
    p.add_argument("--rounds", type=int, default=4, help="timed rounds (after one warm-up round)")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    return p.parse_args(argv)


def fake_teacher(folder: Path) -> Path:
    arch = TeacherSpec().model
    return save_model(folder, build_model(arch, 0), ModelRecord(arch, 0, role="teacher", organism="backdoor"))


def run_distill(ctx, plan, params, model) -> float:
    t0 = time.perf_counter()
    ctx.fit(model, plan, params, stage="bench")
    return time.perf_counter() - t0


def run_bare(batches, objective, model) -> float:
    opt, loss = torch.optim.AdamW(model.parameters(), lr=1e-3), loss_fn(objective)
    model.train()
    t0 = time.perf_counter()
    for batch in batches:
        value = loss(model, batch)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        init = None if args.technique in ("slack", "audit-preserving") else "fresh"
        spec = validate(args.technique, {"steps": args.steps}, init)
        ctx = build_context(fake_teacher(tmp / "teacher"), spec, 0, tmp / "student", cache_dir=tmp / "cache",
                            checkpoint_every=args.checkpoint_every)
        t0 = time.perf_counter()
        plan = spec.technique.plan(ctx, spec.params)
        prep = time.perf_counter() - t0
        plan.stop_fn = None  # time full rounds
        start = ctx.make_student()
        batches = [batch_at(plan.data, ctx.seed, s, spec.params.batch_size) for s in range(args.steps)]
        runs = {"distill": lambda m: run_distill(ctx, plan, spec.params, m),
                "bare": lambda m: run_bare(batches, plan.objective, m)}
        for fn in runs.values():  # warm-up
            fn(copy.deepcopy(start))
        times: dict[str, list[float]] = {"distill": [], "bare": []}
        for r in range(args.rounds):
            for name in list(runs)[:: 1 if r % 2 == 0 else -1]:
                times[name].append(runs[name](copy.deepcopy(start)))
    tokens = args.steps * spec.params.batch_size * TOKENS_PER_SEQ
    out = {"technique": args.technique, "threads": args.threads, "steps": args.steps,
           "distill_tokens_per_s": tokens / min(times["distill"]), "bare_tokens_per_s": tokens / min(times["bare"]),
           "ratio": min(times["bare"]) / min(times["distill"]),
           "ratio_paired_median": statistics.median(b / d for d, b in zip(times["distill"], times["bare"])),
           "prep_seconds": prep, "ms_per_step": 1e3 * min(times["distill"]) / args.steps}
    print(f"distill {args.technique}: {out['distill_tokens_per_s']:,.0f} tokens/s "
          f"({out['ms_per_step']:.1f} ms/step), bare loop {out['bare_tokens_per_s']:,.0f} tokens/s, "
          f"ratio {out['ratio']:.2f} best-of-rounds, {out['ratio_paired_median']:.2f} paired median "
          f"({args.rounds} rounds x {args.steps} steps x {spec.params.batch_size} seqs, {args.threads} thread(s); "
          f"transfer set + teacher outputs once: {prep:.1f} s)")
    return out


if __name__ == "__main__":
    main()
