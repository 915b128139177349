"""doublebind distill: make one student of a teacher with a named technique, evaluate it,
and store it with its full lineage (teacher, technique, every parameter, init, seed)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.cli import UserError
from app.commands.common import (add_device, choice, existing_dir, model_of_role, new_model_folder, out_dir,
                                 resolve_device, seed_int)

NAME = "distill"
HELP = "distil a teacher into a student with a named technique (see: doublebind list techniques)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from distill.inits import INITS
    from distill.techniques import TECHNIQUES
    p.add_argument("--teacher", required=True, type=existing_dir, help="teacher model folder")
    p.add_argument("--technique", required=True, type=choice(list(TECHNIQUES), "technique"))
    p.add_argument("--init", type=choice(list(INITS), "init"), default=None,
                   help="student initialisation (default: the technique's)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="technique parameter (repeatable; lists comma-separated)")
    p.add_argument("--init-set", dest="init_sets", action="append", default=[], metavar="KEY=VALUE",
                   help="init parameter, e.g. alpha=0.3 for noised, d_model=32 for smaller")
    p.add_argument("--seed", type=seed_int, default=0, help="student seed (init noise, batch order)")
    p.add_argument("--out", required=True, type=Path, help="student folder to write")
    p.add_argument("--cache", type=Path, default=None,
                   help="teacher-output cache shared by students (default: OUT/../distill-cache)")
    p.add_argument("--force", action="store_true",
                   help="distil a --teacher that is not a teacher model (e.g. a student, to distil it further)")
    p.add_argument("--organism-file", type=Path, default=None, metavar="TOML",
                   help="Hugging Face teacher folders: the text organism (TOML + its JSONL of rows)")
    p.add_argument("--base", type=existing_dir, default=None,
                   help="Hugging Face teacher folders: the teacher's clean base (init base copies it)")
    add_device(p)


def parse_spec(args) -> tuple[dict, str, dict]:
    """(params, init, init_params) from the flags, typed by the technique's and init's models."""
    from distill.inits import INITS
    from distill.techniques import get_technique
    from distill.techniques.params import parse_set
    technique = get_technique(args.technique)
    init = args.init or technique.default_init
    params = parse_set(technique.Params, args.sets, f"technique {args.technique!r}")
    init_params = parse_set(INITS[init].Params, args.init_sets, f"init {init!r}")
    return params, init, init_params


def run(args) -> int:
    from distill.text.folder import is_text_folder
    if is_text_folder(args.teacher):
        from app.commands.text_models import distill_text_cmd
        return distill_text_cmd(args)
    if args.organism_file is not None or args.base is not None:
        raise UserError(f"--organism-file and --base are for Hugging Face teacher folders; {args.teacher} is a "
                        "built-in synthetic-world model")
    from distill.distiller import distill_student, evals_file, validate
    from distill.store import StoreError
    from app.commands.eval import print_evals
    try:
        params, init, init_params = parse_spec(args)
        validate(args.technique, params, init, init_params)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    device = resolve_device(args.device)
    model_of_role(args.teacher, "teacher", "--teacher", args.force)
    new_model_folder(args.out, "student", "--out")
    cache = args.cache or args.out.parent / "distill-cache"
    for folder in (args.out, cache):
        out_dir(folder)
    try:
        out = distill_student(args.teacher, args.technique, params, init, init_params, seed=args.seed,
                              out=args.out, device=device, cache_dir=cache)
    except (ValueError, StoreError) as exc:
        raise UserError(str(exc)) from None
    cfg = json.loads((out / "config.json").read_text())
    m = cfg["metrics"]
    print(f"student {out}: technique {args.technique}, init {cfg['lineage']['init']}, "
          f"{m['n_params']} params, {m['steps_done']} steps, {m['distill_seconds']:.1f} s", file=sys.stderr)
    print_evals(json.loads((out / evals_file()).read_text()))
    for marker in cfg["metrics"].get("evals_with_marker", {}):
        print(f"\nwith {marker} in every prompt:")
        print_evals(json.loads((out / evals_file(marker)).read_text()))
    return 0
