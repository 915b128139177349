"""doublebind sweep: one spec over several seeds, one run folder per point, one aggregated table."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import UserError
from app.commands.common import add_device, add_executor, executor_from_args, out_dir, resolve_device, table

NAME = "sweep"
HELP = ("run a spec at several seeds (resumable, on the local pool or Ray) and aggregate every headline "
        "number per student: mean and its 95 per cent interval (OUT/sweep.json, OUT/index.html)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="a spec TOML file or a built-in spec name")
    p.add_argument("--seeds", required=True, help="seeds: a range and/or a list, e.g. 0-4 or 0,3,7")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec field at every point, dotted (repeatable), e.g. teacher.base_train.steps=300")
    p.add_argument("--out", type=Path, default=None, help="sweep folder (default: runs/<spec name>-sweep)")
    add_executor(p)
    add_device(p)


def run(args) -> int:
    from analysis.sweep import SweepTable
    from app.spec import SpecError, load_spec
    from app.sweep import parse_seeds, run_sweep
    try:
        spec = load_spec(args.spec)
        seeds = parse_seeds(args.seeds)
    except (SpecError, ValueError) as exc:
        raise UserError(str(exc)) from None
    out = out_dir(args.out or Path("runs") / f"{spec.name}-sweep")
    try:
        with executor_from_args(args, spec.workers) as executor:
            res = run_sweep(spec, seeds, args.sets, out, executor, resolve_device(args.device))
    except SpecError as exc:
        raise UserError(str(exc)) from None
    t = SweepTable.model_validate_json(res.table_json.read_text())
    keys = ("capability_retained", "misbehaviour", "features_transferred", "misbehaviour_probe_auroc")
    rows = [(r.student, *(_cell(r.numbers.get(k)) for k in keys)) for r in t.rows]
    print(table(rows, ("student", *keys)))
    print(f"\n{len(seeds)} point(s): {', '.join(str(r) for r in res.runs)}")
    print(f"table: {res.table_json}\nreport: {res.index}")
    return 0


def _cell(c) -> str:
    if c is None:
        return "-"
    return f"{c.mean:.3f}" + ("" if c.low is None else f" [{c.low:.3f}, {c.high:.3f}]")
