"""doublebind teacher: train (or reuse) the clean base, fine-tune an organism into it, evaluate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.common import (add_device, choice, model_of_role, new_model_folder, out_dir, resolve_device,
                                 seed_int, write_json)
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
    p.add_argument("--force", action="store_true",
                   help="fine-tune a --base that is not a base model (a teacher or a student)")
    add_device(p)


def run(args) -> int:
    from distill.evals import evaluate
    from distill.store import CONFIG_FILE
    from distill.teacher import TeacherSpec, train_base, train_teacher
    from app.commands.common import load_model_or_exit

    device = resolve_device(args.device)
    spec = TeacherSpec()
    base = args.base or args.out.parent / "base"
    reuse = (base / CONFIG_FILE).is_file()
    # both folders are checked before the base's minutes of training
    if reuse:
        model_of_role(base, "base", "--base", args.force)
    else:
        new_model_folder(base, "base", "--base")
    new_model_folder(args.out, "teacher", "--out")
    out_dir(args.out)
    if reuse:
        print(f"reusing base {base}", file=sys.stderr)
    else:
        train_base(spec, args.seed, out_dir(base), device, resume_dir=base.with_name(base.name + ".ckpt"))
    # a reused base that is truncated or tampered with: a StoreError, one line (app.cli)
    train_teacher(spec, args.organism, base, args.seed, args.out, device,
                  resume_dir=args.out.with_name(args.out.name + ".ckpt"))
    model, _ = load_model_or_exit(args.out, device)
    evals = evaluate(model, [args.organism])
    write_json(args.out / "evals.json", evals)
    print_evals(evals)
    return 0
