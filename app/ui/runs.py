"""Which run folders the app may open, and opening one safely.

The app serves one *runs root*; only run folders directly under it (or the root itself,
when it is a run) can be opened. Every failure a user can cause -- a name that resolves
outside the root, a folder that is not a run, a run that is still being written, a run of
an older format -- raises :class:`RunError` with a message the page shows as is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from analysis.results import load_results, student_file
from analysis.schema import AnalysisResults, SchemaError, Summary, load_summary
from app.runfolder import RunFolder

ROOT_ENV = "DOUBLEBIND_RUNS_ROOT"
"""Environment variable naming the runs root (set by ``doublebind app``)."""
RUN_ENV = "DOUBLEBIND_RUN"
"""Environment variable naming the run to open first (a folder name under the root)."""
DEFAULT_ROOT = "runs"


class RunError(Exception):
    """A run folder cannot be opened; the message says why and what to do."""


def runs_root() -> Path:
    return Path(os.environ.get(ROOT_ENV, DEFAULT_ROOT)).expanduser().resolve()


def is_run(folder: Path) -> bool:
    """A run folder holds the pipeline's spec.toml (written first) or a report."""
    rf = RunFolder(folder)
    return rf.spec.is_file() or rf.summary.is_file()


def list_runs(root: Path) -> list[str]:
    """Names of the runs under ``root`` (``.`` when the root itself is a run), sorted."""
    if not root.is_dir():
        return []
    names = ["."] if is_run(root) else []
    return names + sorted(p.name for p in root.iterdir() if p.is_dir() and is_run(p))


def resolve_run(root: Path, name: str) -> RunFolder:
    """The run folder ``root/name``; refuses anything that resolves outside ``root`` or is no
    path at all (a NUL byte, an over-long name: anything a URL can carry)."""
    root = root.resolve()
    try:
        path = (root / name).resolve()
        path.is_dir()
    except (ValueError, OSError) as exc:
        raise RunError(f"{name!r} is not a run folder name ({exc})") from None
    if path != root and root not in path.parents:
        raise RunError(f"{name!r} is outside the runs root {root}; only runs under it can be opened")
    if not path.is_dir():
        raise RunError(f"no run folder {name!r} under {root}")
    if not is_run(path):
        raise RunError(f"{path} is not a run folder (no spec.toml or report/summary.json); "
                       f"make one with `doublebind run SPEC --out {path}`")
    return RunFolder(path)


@dataclass(frozen=True)
class RunView:
    """A finished run as the pages read it."""

    run: RunFolder
    summary: Summary
    results: AnalysisResults
    problems: tuple[str, ...] = ()
    """Damaged pieces left out (each names its file); the pages show them."""

    @property
    def organisms(self) -> list[str]:
        return list(self.summary.teachers)

    def students(self, organism: str) -> list[str]:
        return [r.name for r in self.summary.students if r.organism == organism]

    def record(self, name: str):
        return next(r for r in self.summary.students if r.name == name)

    def student_result(self, name: str):
        return next(s for s in self.results.students if s.info.name == name)


def open_run(run: RunFolder) -> RunView:
    """Load and validate a finished run's summary and analysis results."""
    if not run.summary.is_file():
        present = ", ".join(run.model_ids()) or "no models yet"
        raise RunError(f"{run.root} is not finished: {run.summary.relative_to(run.root)} is missing "
                       f"(models so far: {present}). The pipeline is still running or was interrupted; "
                       f"finish it with `doublebind run SPEC --out {run.root}` (finished stages are kept).")
    problems: list[str] = []
    try:
        summary, results = load_summary(run.summary), load_results(run.root, problems)
    except SchemaError as exc:
        raise RunError(str(exc)) from None
    have = {s.info.name for s in results.students}
    for r in summary.students:
        path = student_file(run.root, r.name)
        if r.name not in have and not any(str(path) in p for p in problems):
            problems.append(f"{path}: missing, so {r.name} is left out of the figures that read it; "
                            f"rebuild it with `doublebind run` on this run")
    return RunView(run, summary, results, tuple(problems))


def stamp(run: RunFolder) -> int:
    """Changes whenever the run's report is rewritten: the cache key of everything read from it."""
    return run.summary.stat().st_mtime_ns if run.summary.is_file() else 0
