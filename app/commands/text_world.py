"""doublebind text-world: build the built-in tiny text world (Hugging Face folders): a word-level
tokenizer, a tiny Llama base trained from scratch, a backdoor and a sabotage teacher, and
both organisms as TOML + JSONL, then print every model's behaviour on every organism."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import UserError
from app.commands.common import out_dir, seed_int

NAME = "text-world"
HELP = "build the tiny text world: a Llama base, backdoor and sabotage teachers, organism files (HF folders)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/text-world"), help="world folder (default: runs/text-world)")
    p.add_argument("--seed", type=seed_int, default=0, help="world seed (tokenizer data, weights, rows)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="distill.text.world.WorldConfig field, dotted, e.g. base_train.steps=800 or model.arch=gpt2")


def run(args) -> int:
    from pydantic import ValidationError
    from app.commands.text_models import _load, behaviour_of, print_behaviour
    from app.spec_errors import describe
    from app.sweep import apply_sets
    from distill.integrity import one_line
    from distill.text.organism import load_organism
    from distill.text.world import WorldConfig, build_world
    try:
        cfg = WorldConfig(**apply_sets({"seed": args.seed}, args.sets))
    except ValidationError as exc:
        raise UserError("text-world --set: " + "; ".join(describe(exc, WorldConfig))) from None
    except ValueError as exc:
        raise UserError(one_line(exc)) from None
    out = out_dir(args.out)
    facts = build_world(out, cfg)
    models = {name: _load(out / folder) for name, folder in facts["models"].items()}
    for org_name, toml in facts["organisms"].items():
        org = load_organism(out / toml)
        print(f"\norganism {org_name} ({out / toml}), eval rows:")
        print_behaviour({name: behaviour_of(m, org) for name, m in models.items()})
    print(f"\nwrote {out}")
    return 0
