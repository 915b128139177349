"""A sweep: one spec run at several seeds (with the same ``--set`` overrides), one run folder
per point, and one aggregated table (analysis.sweep).

    OUT/seed-<s>/        an ordinary run folder per point (resumable like any run)
    OUT/sweep.json       the table: per student, mean and 95% interval of every headline number
    OUT/index.html

All points run as one job graph (:func:`app.pipeline.run_grid`: every job starts when what
it reads is done, whichever point it belongs to, so both cores or the whole cluster stay
busy), on either executor backend.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from app.spec import ExperimentSpec, parse_spec


@dataclass
class SweepResult:
    index: Path
    table_json: Path
    runs: list[Path]


def parse_seeds(text: str) -> list[int]:
    """``0-4`` -> [0, 1, 2, 3, 4]; ``0,3,7`` -> [0, 3, 7]; ranges and lists combine."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"seeds {text!r}: expected a list of seeds or ranges such as 0-4 or 0,3,7")
        seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {text!r}: empty or repeated seeds")
    return seeds


def _value(text: str):
    """A --set value as TOML would read it (numbers, booleans, lists, quoted strings), else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_sets(data: dict, sets: list[str]) -> dict:
    """``data`` with every ``dotted.key=value`` override set (nested tables created as needed)."""
    out = {**data}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. teacher.base_train.steps=300")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            child = node.get(p)
            node[p] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node[leaf] = _value(value)
    return out


def point_specs(spec: ExperimentSpec, seeds: list[int], sets: list[str]) -> list[ExperimentSpec]:
    """The validated spec of every point (errors name the point's seed and the field)."""
    base = apply_sets(spec.model_dump(mode="json"), sets)
    return [parse_spec({**base, "seed": s, "name": f"{spec.name}-seed{s}"}, f"{spec.name} at seed {s}")
            for s in seeds]


def run_sweep(spec: ExperimentSpec, seeds: list[int], sets: list[str], out: Path | str, executor,
              device: str = "cpu") -> SweepResult:
    """Run (or resume) every point, then write the aggregated table into ``out``."""
    from analysis.sweep import aggregate, read_summary, write_sweep
    from app.pipeline import Pipeline, run_grid
    from app.runlock import run_lock
    out = Path(out)
    specs = point_specs(spec, seeds, sets)
    runs = [out / f"seed-{s}" for s in seeds]
    with run_lock(out):
        run_grid([Pipeline(sp, r, device) for sp, r in zip(specs, runs)], executor)
        points = [{"seed": s, "sets": list(sets), "run": str(r)} for s, r in zip(seeds, runs)]
        index, table = write_sweep(aggregate(spec.name, points, [read_summary(r) for r in runs]), out)
    return SweepResult(index, table, runs)
