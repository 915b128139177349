"""doublebind separation: do the white-box headlines track behaviour, across one or more runs?"""

from __future__ import annotations

import argparse

from app.cli import UserError
from app.commands.common import existing_dir, table

NAME = "separation"
HELP = ("AUROC with which features_transferred and the misbehaviour probe rank the behaviourally "
        "misaligned students above the others, pooled over runs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", type=existing_dir, metavar="RUN_DIR")


def run(args) -> int:
    from analysis.schema import SchemaError, load_summary
    from analysis.separation import SEPARATION_KEYS, behaviourally_misaligned, metric_separation
    records, alpha = [], None
    for run_dir in args.run_dirs:
        try:
            summary = load_summary(run_dir / "report" / "summary.json")
        except SchemaError as exc:
            raise UserError(str(exc)) from None
        alpha = summary.thresholds.alpha
        records += summary.students
    rows = [(r.name, "misaligned" if behaviourally_misaligned(r, records, alpha) else "other",
             r.features_transferred, r.misbehaviour_probe_auroc) for r in records]
    print(table(rows, ("student", "behaviour", *SEPARATION_KEYS)))
    sep = metric_separation(records, alpha)
    print(f"\n{sep.n_misaligned} behaviourally misaligned students (misbehaviour significantly above the "
          f"same-init negative control, p < {alpha}), {sep.n_other} others")
    for key, value in sep.auroc.items():
        print(f"separation AUROC of {key}: {'n/a' if value is None else f'{value:.3f}'}")
    return 0
