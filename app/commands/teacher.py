"""doublebind teacher: train (or reuse) the clean base, fine-tune an organism into it, evaluate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.common import (add_device, choice, read_config_or_exit, resolve_device,
                                 seed_int, write_json)
from app.cli import UserError
from app.commands.eval import print_evals

NAME = "teacher"
HELP = "train the clean base (or reuse it) and fine-tune an organism into it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from distill.organisms import ORGANISMS
    p.add_argument("--organism", required=True, type=choice(list(ORGANISMS), "organism"))
    p.add_argument("--out", required=True, type=Path, help="teacher folder to write")
    p.add_argument("--base", type=Path, default=None,
                   help="base folder (default: OUT/../base); reused when it exists")
    p.add_argument("--seed", type=seed_int, default=0)
    add_device(p)


def run(args) -> int:
    from distill.evals import evaluate
    from distill.teacher import TeacherSpec, train_base, train_teacher
    from app.commands.common import load_model_or_exit

    from distill.store import StoreError

    device = resolve_device(args.device)
    spec = TeacherSpec()
    base = args.base or args.out.parent / "base"
    for folder in (args.out, base):
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{folder}: exists and is not a directory")
    if (base / "config.json").exists():
        read_config_or_exit(base)
        print(f"reusing base {base}", file=sys.stderr)
    else:
        train_base(spec, args.seed, base, device, resume_dir=base.with_name(base.name + ".ckpt"))
    try:
        train_teacher(spec, args.organism, base, args.seed, args.out, device,
                      resume_dir=args.out.with_name(args.out.name + ".ckpt"))
    except StoreError as exc:  # a reused base that is truncated or tampered with
        raise UserError(str(exc)) from None
    model, _ = load_model_or_exit(args.out, device)
    evals = evaluate(model, [args.organism])
    write_json(args.out / "evals.json", evals)
    print_evals(evals)
    return 0
