"""doublebind report: rebuild a run's report from its stored results (no retraining)."""

from __future__ import annotations

import argparse

from app.cli import UserError
from app.commands.common import existing_dir

NAME = "report"
HELP = "rebuild report/index.html and report/summary.json of a run from stored results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=existing_dir)


def run(args) -> int:
    from analysis.report import build_report
    from analysis.schema import SchemaError
    try:
        paths = build_report(args.run_dir)
    except SchemaError as exc:
        raise UserError(str(exc)) from None
    print(f"report: {paths.index}\nsummary: {paths.summary_json}")
    return 0
