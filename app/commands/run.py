"""doublebind run: an experiment spec end to end (resumable), ending with the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import UserError
from app.commands.common import add_device, add_executor, executor_from_args, out_dir, resolve_device

NAME = "run"
HELP = "run an experiment spec end to end (default: the built-in 'default' spec); resumable"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="?", default="default",
                   help="a spec TOML file or a built-in spec name (default: default)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<spec name>)")
    add_executor(p)
    add_device(p)


def run(args) -> int:
    from app.pipeline import run_experiment
    from app.spec import SpecError, load_spec
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    out = out_dir(args.out or Path("runs") / spec.name)
    with executor_from_args(args, spec.workers) as executor:
        result = run_experiment(spec, out, resolve_device(args.device), executor)
    print(result.table())
    print(f"\nreport: {out / 'report' / 'index.html'}\nsummary: {out / 'report' / 'summary.json'}")
    return 0
