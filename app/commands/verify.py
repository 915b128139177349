"""doublebind verify: check every artifact of a run against its recorded sha256, changing nothing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli import UserError
from app.commands.common import existing_dir

NAME = "verify"
HELP = ("check a run folder: every file each finished stage wrote, against its recorded sha256, and the "
        "teacher-output cache (exit 0: intact, 1: damage found; nothing is changed)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=existing_dir)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the problems")


def run(args) -> int:
    from app.runfolder import SPEC_FILE
    from app.stages import verify_run
    root: Path = args.run_dir
    checks = verify_run(root)
    if not checks and not (root / SPEC_FILE).is_file():
        raise UserError(f"{root}: not a run folder (no {SPEC_FILE}, no finished stage)")
    damaged = 0
    for check in checks:
        where = check.folder.relative_to(root) if check.folder.is_relative_to(root) else check.folder
        if check.problems:
            damaged += 1
            for problem in check.problems:
                print(f"DAMAGED {where}: {problem}")
        elif check.stale:
            print(f"stale   {where}: written by an older doublebind; `doublebind run` redoes it")
        elif not args.quiet:
            print(f"ok      {where}")
    bad_cache = cache_problems(root)
    for problem in bad_cache:
        print(f"DAMAGED cache: {problem} (recomputed when a student needs it)")
    n = len(checks)
    if damaged or bad_cache:
        print(f"{damaged} of {n} stage(s) damaged, {len(bad_cache)} cache file(s) damaged; "
              f"`doublebind run {root / SPEC_FILE} --out {root}` redoes exactly those", file=sys.stderr)
        return 1
    print(f"{n} stage(s) intact", file=sys.stderr)
    return 0


def cache_problems(root: Path) -> list[str]:
    """Teacher-output cache files that fail their content digest (they self-verify)."""
    from distill.integrity import ArtifactError, load_tensors
    out = []
    for path in sorted((root / "cache").glob("*.safetensors")):
        try:
            load_tensors(path)
        except ArtifactError as exc:
            out.append(str(exc))
    return out
