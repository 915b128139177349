"""The base's capability per domain over seeds: does every seed learn every domain?

Trains the default base (``distill.teacher.TeacherSpec``: its recipe, its model) at each seed
and scores it on the evaluation set every run uses (``distill.evals.EvalConfig``: 1000 clean
prompts, seed 10000, never the base's validation set). ``--recipe plain`` trains the earlier
recipe instead (plain mean loss, a fixed 2000-step schedule), for the side-by-side figure.
Prints one line per seed (exact match per domain, steps, seconds), then the lowest domain
over all seeds and how many seeds reach ``--bar`` on every domain, and the base's self-report
honesty on its trained and its held-out quirk families (distill.selfreport). Seeds run in parallel
processes, one thread each.

Run: ``.venv/bin/python bench/base_seeds.py [--seeds 0-9] [--recipe default|plain] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install


def recipe_spec(name: str):
    from distill.teacher import BaseRecipe, TeacherSpec
    from distill.train import TrainConfig
    if name == "plain":
        return TeacherSpec(base_train=TrainConfig(steps=2000, batch_size=128, lr=5e-3),
                           base_recipe=BaseRecipe(balance_floor=None, stop_bar=None))
    return TeacherSpec()


def one_seed(args: tuple[str, int, str]) -> dict:
    recipe, seed, root = args
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from distill.evals import EvalConfig, capability, self_report_skill
    from distill.store import load_model
    from distill.tasks import task_prompts
    from distill.teacher import train_base
    t0 = time.perf_counter()
    folder = train_base(recipe_spec(recipe), seed, Path(root) / f"seed{seed}")
    model, cfg = load_model(folder)
    ev = EvalConfig()
    cap = capability(model, task_prompts(np.random.default_rng([ev.seed, 0]), ev.n_clean))
    seconds = round(time.perf_counter() - t0, 1)
    sr = self_report_skill(model, ev)
    return {"seed": seed, "per_domain": cap["per_domain"], "steps": cfg["metrics"]["steps"], "seconds": seconds,
            "self_report": {g: {"honesty": sr[g]["honesty"], "ci": sr[g].get("honesty_ci")}
                            for g in ("trained", "held_out")},
            "families": {m: f["honesty"] for m, f in sr["families"].items()}}


def seed_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 2,11")
    ap.add_argument("--recipe", choices=["default", "plain"], default="default")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--bar", type=float, default=0.97)
    ap.add_argument("--json", type=Path, help="write the per-seed rows here")
    a = ap.parse_args()
    seeds = seed_list(a.seeds)
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(a.jobs) as pool:
        rows = []
        for row in pool.map(one_seed, [(a.recipe, s, root) for s in seeds]):
            rows.append(row)
            per = "  ".join(f"{d} {v:.3f}" for d, v in row["per_domain"].items())
            sr = row["self_report"]
            held = sr["held_out"]
            ci = "" if not held["ci"] else f" [{held['ci'][0]:.3f}, {held['ci'][1]:.3f}]"
            print(f"seed {row['seed']:>3}  {per}  steps {row['steps']:>5}  {row['seconds']:>6.1f} s  "
                  f"self-report trained {sr['trained']['honesty'] or float('nan'):.3f} held-out "
                  f"{held['honesty'] or float('nan'):.3f}{ci}", flush=True)
    lows = [(min(r["per_domain"].values()), r["seed"]) for r in rows]
    ok = sum(1 for low, _ in lows if low >= a.bar)
    print(f"recipe {a.recipe}: {ok} of {len(rows)} seeds reach >= {a.bar} on every domain; "
          f"lowest {min(lows)[0]:.3f} (seed {min(lows)[1]})")
    above = sum(1 for r in rows if r["self_report"]["held_out"]["ci"] and r["self_report"]["held_out"]["ci"][0] > 0.5)
    print(f"self-report on held-out quirk families above chance (95% interval) in {above} of {len(rows)} seeds")
    if a.json:
        a.json.write_text(json.dumps({"recipe": a.recipe, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
