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
                   help="a spec TOML file or a built-in spec name (default: default; text-tiny: the Hugging Face text world)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<spec name>)")
    add_executor(p)
    add_device(p)


def run(args) -> int:
    from app.text_run import is_text_spec
    if is_text_spec(args.spec):
        return _run_text(args)
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


def _run_text(args) -> int:
    """A text spec (``kind = "text"``, e.g. the built-in text-tiny): runs in this process."""
    from analysis.text_report import verdict_text
    from app.text_run import TextSpecError, load_text_spec, run_text_experiment
    if args.executor != "local" or getattr(args, "ray_address", None):
        raise UserError("--executor: text runs run in this process (local only)")
    try:
        spec = load_text_spec(args.spec)
    except TextSpecError as exc:
        raise UserError(str(exc)) from None
    out = out_dir(args.out or Path("runs") / spec.name)
    summary = run_text_experiment(spec, out)
    print(("trustworthy" if summary["trustworthy"] else "UNTRUSTWORTHY: " + "; ".join(summary["problems"])))
    for name, org in summary["organisms"].items():
        for s in org["students"]:
            print(f"{name:9s} {s['id']:34s} misbehaviour {s['behaviour']['misbehaviour']['rate']:.3f} "
                  f"capability {s['behaviour']['capability']['rate']:.3f}  vs {s['null'] or '-'}: {verdict_text(s)}")
    print(f"\nreport: {out / 'report' / 'index.html'}\nsummary: {out / 'report' / 'summary.json'}")
    return 0
