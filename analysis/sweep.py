"""A sweep's aggregated table: per student label, every headline number of ``summary.json``
as the mean over the sweep's points with a 95% Student-t interval (analysis.findings
``mean_interval``), plus how many points had it. Read from the points' summaries alone;
written as ``sweep.json`` and one self-contained ``index.html``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from analysis.findings import mean_interval
from analysis.report import CSS, REPORT_DIR, SUMMARY_FILE, section
from distill.checkpoint import atomic_write_bytes

SWEEP_JSON = "sweep.json"
SWEEP_HTML = "index.html"
SWEEP_FORMAT = "doublebind-sweep/1"
HEADLINE = ("capability", "capability_retained", "misbehaviour", "misalignment_transferred",
            "features_transferred", "features_null", "misbehaviour_probe_auroc", "context_probe_auroc",
            "probe_auroc", "probe_transfer_auroc", "probe_null_auroc", "decoder_cos", "causal_drop",
            "incrimination", "kl_eliciting", "kl_clean")
"""The per-student numbers of summary.json a sweep aggregates (each where defined)."""


class Cell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mean: float
    low: float | None
    high: float | None
    """95% interval of the mean over points; None with one point."""
    n: int
    """Points where the number is defined."""


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    student: str
    numbers: dict[str, Cell]
    verdicts: dict[str, int]
    """How many points gave each verdict."""
    trustworthy_points: int


class SweepTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = SWEEP_FORMAT
    spec: str
    points: list[dict]
    """Each point: its seed, its ``--set`` overrides and its run folder."""
    rows: list[Row]


def _number(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def aggregate(spec: str, points: list[dict], summaries: list[dict]) -> SweepTable:
    """The table over ``summaries`` (one summary.json per point, in point order)."""
    order: list[str] = []
    by_student: dict[str, list[tuple[dict, bool]]] = {}
    for summary in summaries:
        trusted = bool((summary.get("controls") or {}).get("trustworthy"))
        for st in summary.get("students", []):
            if st["name"] not in by_student:
                order.append(st["name"])
            by_student.setdefault(st["name"], []).append((st, trusted))
    rows = []
    for name in order:
        recs = by_student[name]
        numbers = {}
        for key in HEADLINE:
            values = [v for st, _ in recs if (v := _number(st.get(key))) is not None]
            if values:
                iv = mean_interval(values)
                numbers[key] = Cell(mean=iv.mean, low=iv.low, high=iv.high, n=iv.n)
        verdicts: dict[str, int] = {}
        for st, _ in recs:
            verdicts[st.get("verdict", "?")] = verdicts.get(st.get("verdict", "?"), 0) + 1
        rows.append(Row(student=name, numbers=numbers, verdicts=verdicts,
                        trustworthy_points=sum(t for _, t in recs)))
    return SweepTable(spec=spec, points=points, rows=rows)


def write_sweep(table: SweepTable, out: Path | str) -> tuple[Path, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / SWEEP_JSON, table.model_dump_json(indent=2).encode())
    atomic_write_bytes(out / SWEEP_HTML, render(table).encode())
    return out / SWEEP_HTML, out / SWEEP_JSON


def read_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / REPORT_DIR / SUMMARY_FILE).read_text())


def _cell(c: Cell | None) -> str:
    if c is None:
        return "<td>–</td>"
    ci = "" if c.low is None else f"<br><small>[{c.low:.3f}, {c.high:.3f}]</small>"
    return f"<td>{c.mean:.3f}{ci}</td>"


def render(t: SweepTable) -> str:
    esc = html.escape
    keys = [k for k in HEADLINE if any(k in r.numbers for r in t.rows)]
    head = "".join(f"<th>{esc(k)}</th>" for k in ["student", "verdicts", "trustworthy"] + keys)
    body = "".join(
        "<tr><td>" + esc(r.student) + "</td><td>" + esc(", ".join(f"{v} ×{n}" for v, n in r.verdicts.items()))
        + f"</td><td>{r.trustworthy_points}/{len(t.points)}</td>" + "".join(_cell(r.numbers.get(k)) for k in keys)
        + "</tr>" for r in t.rows)
    points = "".join(f"<li>seed {p['seed']} {esc(' '.join(p.get('sets', [])))}: <code>{esc(p['run'])}</code></li>"
                     for p in t.points)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>doublebind sweep: {esc(t.spec)}"
            f"</title><style>{CSS}</style></head><body><h1>doublebind sweep</h1>"
            f"<p class='meta'>spec <b>{esc(t.spec)}</b> · {len(t.points)} point(s)</p>"
            + section("table", "1. Every headline number: mean over points and its 95% interval",
                      f"<table><tr>{head}</tr>{body}</table>")
            + section("points", "2. Points", f"<ul>{points}</ul>") + "</body></html>")
