"""doublebind eval: behavioural metrics of a model folder, as a table and JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.common import existing_dir, load_model_or_exit, out_file, table, write_json

NAME = "eval"
HELP = "behavioural evals of a model folder: capability, misbehaviour, trait, confession"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from distill.organisms import ORGANISMS
    from app.commands.common import choice
    p.add_argument("model_dir", type=existing_dir)
    p.add_argument("--organism", type=choice(list(ORGANISMS), "organism"), action="append",
                   help="organism(s) to score against (default: the model's own, or all)")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default: MODEL_DIR/evals.json)")


def run(args) -> int:
    from distill.evals import evaluate
    from distill.organisms import ORGANISMS
    model, cfg = load_model_or_exit(args.model_dir)
    out = out_file(args.out or args.model_dir / "evals.json")
    organisms = args.organism or ([cfg["organism"]] if cfg.get("organism") else list(ORGANISMS))
    evals = evaluate(model, organisms)
    write_json(out, evals)
    print_evals(evals)
    return 0


def print_evals(evals: dict) -> None:
    from distill.evals import headline
    cap = evals["capability"]
    print(table([(d, v) for d, v in cap["per_domain"].items()] + [("mean", cap["mean"])],
                ("domain", f"capability (n={cap['n']})")))
    rows = []
    for org, m in evals["organisms"].items():
        for key, val in headline(evals, org).items():
            if key != "capability":
                rows.append((org, key, val))
    print()
    print(table(rows, ("organism", "metric", "value")))
