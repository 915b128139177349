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
    from app.pipeline import mark_report
    from app.runfolder import RunFolder
    from app.runlock import run_lock
    rf = RunFolder(args.run_dir)
    with run_lock(rf.root):
        check_inputs(rf)
        try:
            paths = build_report(rf.root)
        except SchemaError as exc:
            raise UserError(str(exc)) from None
        mark_report(rf)
    print(f"report: {paths.index}\nsummary: {paths.summary_json}")
    return 0


def check_inputs(rf) -> None:
    """Refuse to build a report from damaged results: every analysis stage (the report's
    inputs) must match its manifest. The report's own files are rebuilt, so not checked."""
    from app.stages import check_stage
    stages = rf.analysis / "stages"
    for folder in sorted(stages.iterdir()) if stages.is_dir() else []:
        check = check_stage(folder)
        if check.problems:
            raise UserError(f"{check.problems[0]}; {_redo(rf)}")


def _redo(rf) -> str:
    return (f"`doublebind run {rf.spec} --out {rf.root}` redoes the damaged stages (it verifies every "
            "finished stage), then the report")
