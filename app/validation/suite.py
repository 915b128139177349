"""The validation suite end to end: every seed's experiment, measurements, findings, report.

    OUT/seed-<s>/          one run folder per seed (app.runfolder layout + relearn/)
    OUT/validation/        index.html + findings.json (app.validation.report)
    OUT/validate.json      which mode this folder holds (a quick and a default run never mix)

Resumable because the pipeline is: a second invocation skips every finished job and only
re-measures, re-judges and re-renders.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from analysis.double_bind import double_bind
from analysis.findings import FindingsReport, Measurements, judge_all
from app.executor import LocalExecutor
from app.runfolder import RunFolder
from app.runlock import run_lock
from app.validation.measure import METRICS, VALIDATE_DETECTORS, double_bind_attempts, measure, relearn_file
from app.validation.pipeline import ValidationPipeline, run_seeds
from app.validation.report import ValidationPaths, write_validation
from app.validation.spec import ValidationSpec, check_plan, load_findings, load_validation
from distill.checkpoint import atomic_write_bytes

MODE_FILE = "validate.json"


class SuiteError(ValueError):
    """The output folder cannot be used (it holds another mode's runs)."""


@dataclass
class SuiteResult:
    report: FindingsReport
    paths: ValidationPaths


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


def _claim_folder(out: Path, mode: str) -> None:
    path = Path(out) / MODE_FILE
    if path.is_file():
        held = json.loads(path.read_text()).get("mode")
        if held != mode:
            raise SuiteError(f"{out} holds a {held!r} validation run; use another --out for {mode!r}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps({"mode": mode}).encode())


def curves(vspec: ValidationSpec, runs: list[Path]) -> dict[str, dict]:
    """Relearning curves of every relearned model, one row per seed (seeds missing one are skipped)."""
    out = {}
    for mid in vspec.relearn.models:
        found = [json.loads(p.read_text()) for p in (relearn_file(RunFolder(r), mid) for r in runs) if p.is_file()]
        if found:
            out[mid] = {"steps": found[0]["steps"], "per_seed": [f["misbehaviour"] for f in found]}
    return out


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (the job workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_suite(mode: str = "default", seeds: int | None = None, out: Path | str = "runs/validate",
              device: str = "cpu", command: str = "", executor=None) -> SuiteResult:
    """Run (or resume) the suite in ``mode`` over seeds 0..seeds-1 and write the report."""
    t0, c0, out = time.perf_counter(), cpu_seconds(), Path(out)
    vspec, defs = load_validation(mode), load_findings()
    check_plan(vspec, defs, list(METRICS))
    with run_lock(out):  # one writer for the whole suite folder (its seeds' runs included)
        _claim_folder(out, mode)
        specs = [vspec.seed_spec(s) for s in range(seeds or vspec.seeds)]
        runs = [seed_dir(out, s) for s in range(len(specs))]
        pipelines = [ValidationPipeline(sp, r, vspec.relearn, device) for sp, r in zip(specs, runs)]
        pool = executor or LocalExecutor(specs[0].workers)
        try:
            stages = run_seeds(pipelines, pool)
        finally:
            if executor is None:
                pool.close()  # its workers are reaped here, so cpu_seconds counts them
        per_seed: list[Measurements] = [measure(r, sp) for r, sp in zip(runs, specs)]
        report = FindingsReport(mode=mode, seeds=list(range(len(runs))), measurements=per_seed,
                                results=judge_all(defs, per_seed, quick=mode == "quick"),
                                curves=curves(vspec, runs), runs=[str(r) for r in runs],
                                wall_seconds=time.perf_counter() - t0, cpu_seconds=cpu_seconds() - c0,
                                stages=[asdict(s) for s in stages], command=command,
                                double_bind=double_bind([a for i, (r, sp) in enumerate(zip(runs, specs))
                                                         for a in double_bind_attempts(r, sp, i)],
                                                        VALIDATE_DETECTORS))
        return SuiteResult(report, write_validation(report, out))
