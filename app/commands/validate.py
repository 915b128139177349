"""doublebind validate: the scientific validation suite (literature findings over several seeds)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from app.cli import UserError
from app.commands.common import (add_device, add_executor, int_at_least, make_executor_or_exit, out_dir,
                                 resolve_device, table)

NAME = "validate"
HELP = ("reproduce the literature's findings over several seeds: mean, confidence interval, "
        "PASS/FAIL (resumable; writes OUT/validation/index.html and findings.json)")


positive_int = int_at_least(1)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="number of seeds, run as seeds 0..N-1 (default: 3; quick: 1)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: runs/validate, or runs/validate-quick with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="tiny models and few steps, looser bars: a few minutes (CI)")
    p.add_argument("--strict", action="store_true", help="exit with code 1 unless every finding passes")
    add_executor(p)
    add_device(p)


def _interval(r) -> str:
    return "n/a (1 seed)" if r.low is None else f"[{r.low:.3f}, {r.high:.3f}]"


def run(args) -> int:
    from app.spec import SpecError
    from app.validation.report import bar
    from app.validation.suite import SuiteError, run_suite
    mode = "quick" if args.quick else "default"
    out = out_dir(args.out or Path("runs") / ("validate-quick" if args.quick else "validate"))
    # local: the suite's own pool (its specs' workers); ray: a private instance of 2 CPUs or a cluster
    executor = None if args.executor == "local" and not args.ray_address else make_executor_or_exit(args, 2)
    try:
        res = run_suite(mode, args.seeds, out, resolve_device(args.device), executor=executor,
                        command=shlex.join(["doublebind", *sys.argv[1:]]))
    except (SpecError, SuiteError) as exc:
        raise UserError(str(exc)) from None
    finally:
        if executor is not None:
            executor.close()
    rep = res.report
    rows = [(r.definition.id, r.definition.title, "–" if r.mean is None else r.mean, _interval(r),
             bar(r), r.status) for r in rep.results]
    print(table(rows, ("id", "finding", "mean", "95% interval", "bar", "status")))
    print(f"\n{rep.n_passed}/{len(rep.results)} findings PASS over seeds {rep.seeds} "
          f"(wall {rep.wall_seconds / 60:.1f} min, CPU {rep.cpu_seconds / 60:.1f} min)")
    print(f"report: {res.paths.index}\nfindings: {res.paths.findings_json}")
    return 1 if args.strict and rep.n_passed < len(rep.results) else 0
