"""The validation report: ``<out>/validation/findings.json`` + one self-contained ``index.html``.

Rendered from the :class:`analysis.findings.FindingsReport` alone, in the transfer report's
style (its CSS and section helper, matplotlib figures inlined as SVG, no JavaScript, no
external references). Sections: verdict banner, 1 findings table, 2 findings plot (per
seed values, mean, 95% interval, threshold), 3 each finding's measurements and notes,
4 relearning curves, 5 every measurement (mean over seeds), 6 timing and how to reproduce.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import NamedTuple

import numpy as np

from analysis import figures
from analysis.findings import FindingResult, FindingsReport
from analysis.report import CSS, double_bind_html, section
from distill.checkpoint import atomic_write_bytes

VALIDATION_DIR = "validation"
INDEX_FILE = "index.html"
FINDINGS_JSON = "findings.json"
STATUS_COLOUR = {"PASS": "#2e7d32", "FAIL": "#c62828", "MISSING": "#9e9e9e"}
EXTRA_CSS = "td.PASS{background:#c8e6c9;font-weight:bold}td.FAIL{background:#ffcdd2;font-weight:bold}" \
            "td.MISSING{background:#eee}td.claim{text-align:left;min-width:240px;max-width:380px}" \
            ".note{background:#f7f7f7;border-left:3px solid #999;padding:6px 10px;font-size:13px}"


class ValidationPaths(NamedTuple):
    index: Path
    findings_json: Path


def write_validation(report: FindingsReport, out: Path | str) -> ValidationPaths:
    folder = Path(out) / VALIDATION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / FINDINGS_JSON, report.model_dump_json(indent=2).encode())
    atomic_write_bytes(folder / INDEX_FILE, render(report).encode())
    return ValidationPaths(folder / INDEX_FILE, folder / FINDINGS_JSON)


def fmt(x: float | None, digits: int = 3) -> str:
    """Fixed point; small non-zero values (tiny probabilities) in 3 significant digits; float
    noise below 1e-7 (e.g. 0.002 + 0 - 0.002 over seeds) as 0."""
    if x is None:
        return "–"
    if abs(x) < 1e-7:
        x = 0.0
    return f"{x:.{digits}g}" if 0 < abs(x) < 1e-3 else f"{x:.{digits}f}"


def interval(r) -> str:
    return "undefined (1 seed)" if r.low is None else f"[{fmt(r.low)}, {fmt(r.high)}]"


def formula(r: FindingResult) -> str:
    d = r.definition
    t = [f"<code>{html.escape(x)}</code>" for x in d.terms]
    if d.op == "value":
        return t[0]
    if d.op == "difference":
        return f"{t[0]} − {t[1]}"
    if d.op in ("ratio", "log_ratio"):
        inner = f"{t[0]} / {t[1]}"
        return inner if d.op == "ratio" else f"log10({inner})"
    if d.op == "slope":
        return "slope vs " + ", ".join(f"{x:g}→{s}" for x, s in zip(d.xs, t))
    return f"{d.op}(" + ", ".join(t) + ")"


SYMBOL = {"greater": ">", "at_least": "≥", "less": "<", "at_most": "≤"}


def bar(r: FindingResult) -> str:
    """The bar in words: ``> 0.05`` (on the mean) or ``≥ 1 (every seed)``."""
    worst = " (every seed)" if r.definition.judge_on == "worst" else ""
    return f"{SYMBOL[r.definition.direction]} {fmt(r.threshold)}{worst}"


def render(report: FindingsReport) -> str:
    esc = html.escape
    meta = (f"mode <b>{report.mode}</b> · seeds {', '.join(map(str, report.seeds))} · "
            f"{report.n_passed}/{len(report.results)} PASS"
            + (f" · last invocation: wall {report.wall_seconds / 60:.1f} min" if report.wall_seconds else "")
            + (f", CPU {report.cpu_seconds / 60:.1f} min" if report.cpu_seconds else ""))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>doublebind validation</title>"
             f"<style>{CSS}{EXTRA_CSS}</style></head><body>",
             f"<h1>doublebind validation</h1><p class='meta'>{meta}</p>", banner(report),
             section("findings", "1. Findings", findings_table(report)),
             section("plot", "2. Per-seed values, mean and 95% interval", _fig(findings_figure(report),
                     "Each panel: one finding's value per seed (dots), the mean (bar) with its 95% Student-t "
                     "interval, and the threshold (dashed). Green: PASS, red: FAIL.")),
             section("details", "3. Measurements behind each finding", details(report)),
             section("relearn", "4. Relearning curves", _fig(relearn_figure(report),
                     "Misbehaviour on eliciting prompts during a short fine-tune on the organism's eliciting data "
                     "(mean over seeds). Slower rise = harder to relearn.")),
             section("measurements", "5. All measurements (mean over seeds)", measurements_table(report)),
             section("double-bind", "6. The double bind", double_bind_html(report.double_bind)),
             section("reproduce", "7. Timing and reproduction", timing(report)),
             "</body></html>"]
    return "\n".join(parts)


def _fig(fig, caption: str) -> str:
    if fig is None:
        return "<p class='note'>Not measured in this run.</p>"
    return f"<figure>{figures.to_svg(fig)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def banner(report: FindingsReport) -> str:
    bad = [r for r in report.results if not r.passed]
    if not bad:
        return f"<div class='banner good'><b>All {len(report.results)} findings reproduced.</b></div>"
    items = "".join(f"<li>{html.escape(r.definition.id)} {html.escape(r.definition.title)}: {r.status} "
                    f"({'worst seed' if r.definition.judge_on == 'worst' else 'mean'} {fmt(r.judged)}, "
                    f"bar {bar(r)})</li>" for r in bad)
    return (f"<div class='banner bad'><b>{len(bad)} of {len(report.results)} findings did not reproduce</b>"
            f"<ul>{items}</ul></div>")


def findings_table(report: FindingsReport) -> str:
    head = ("<tr><th>id</th><th class='l'>finding</th><th class='l'>claim</th><th class='l'>value</th>"
            "<th>mean</th><th>95% interval</th><th>bar</th><th>status</th><th>interval clear of bar</th>"
            "<th>interval excludes 0</th><th>per seed</th></tr>")
    rows = "".join(_finding_row(r) for r in report.results)
    return f"<div class='wrap'><table>{head}{rows}</table></div>"


def _finding_row(r: FindingResult) -> str:
    d, esc, yn = r.definition, html.escape, {True: "yes", False: "no", None: "–"}
    unit = f" <span class='small'>{esc(d.unit)}</span>" if d.unit else ""
    return (f"<tr><td class='l'>{d.id}</td><td class='l'>{esc(d.title)}</td>"
            f"<td class='claim'>{esc(d.claim)} <span class='small'>({esc(d.source)})</span></td>"
            f"<td class='l'>{formula(r)}{unit}</td><td>{fmt(r.mean)}</td><td class='nw'>{interval(r)}</td>"
            f"<td class='nw'>{bar(r)}</td><td class='{r.status}'>{r.status}</td>"
            f"<td>{yn[r.interval_clear]}</td><td>{yn[r.excludes_zero]}</td>"
            f"<td class='nw'>{', '.join(fmt(v) for v in r.values)}</td></tr>")


def findings_figure(report: FindingsReport):
    results = [r for r in report.results if r.n]
    if not results:
        return None
    ncols = 4
    nrows = -(-len(results) // ncols)
    fig = figures.new_figure(2.6 * ncols, 2.1 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, r in zip(axes, results):
        vals = [v for v in r.values if v is not None]
        colour = STATUS_COLOUR[r.status]
        ax.scatter(np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else [0], vals, s=14, c=colour, zorder=3)
        if r.low is not None:
            ax.errorbar([0.45], [r.mean], yerr=[[r.mean - r.low], [r.high - r.mean]], fmt="s", color=colour,
                        capsize=4, ms=5)
        else:
            ax.scatter([0.45], [r.mean], marker="s", c=colour, s=22)
        ax.axhline(r.threshold, color="#555", ls="--", lw=1)
        if r.definition.is_contrast and r.threshold != 0:
            ax.axhline(0, color="#bbb", lw=0.8)
        ax.set_xlim(-0.5, 0.9)
        ax.set_xticks([])
        ax.set_title(f"{r.definition.id} {r.definition.title}", fontsize=8)
    for ax in axes[len(results):]:
        ax.set_visible(False)
    return fig


def details(report: FindingsReport) -> str:
    out = []
    for r in report.results:
        d = r.definition
        rows = "".join(f"<tr><td class='l'><code>{html.escape(t.key)}</code></td><td>{fmt(t.mean)}</td>"
                       f"<td class='nw'>{interval(t)}</td>"
                       f"<td class='nw'>{', '.join(fmt(v) for v in t.values)}</td></tr>" for t in r.terms)
        note = (f"<p class='note'><b>Investigation note</b> (hand-written after running the suite; see the "
                f"README): {html.escape(d.note)}</p>") if d.note else ""
        value = (f"<p>value = {formula(r)}: mean <b>{fmt(r.mean)}</b>, 95% interval {interval(r)}; "
                 f"bar {bar(r)}</p>")
        out.append(f"<h3>{d.id} {html.escape(d.title)} — <span style='color:{STATUS_COLOUR[r.status]}'>"
                   f"{r.status}</span></h3><p>{html.escape(d.claim)}</p>{value}"
                   f"<table><tr><th class='l'>measurement</th><th>mean</th><th>95% interval</th><th>per seed</th></tr>"
                   f"{rows}</table>{note}")
    return "".join(out)


def relearn_figure(report: FindingsReport):
    if not report.curves:
        return None
    fig = figures.new_figure(6.5, 3.4)
    ax = fig.add_subplot()
    for model_id, curve in report.curves.items():
        runs = np.asarray(curve["per_seed"], dtype=float)
        ax.plot(curve["steps"], runs.mean(axis=0), marker="o", ms=3, label=model_id)
    ax.set(xlabel="fine-tune steps on eliciting data", ylabel="misbehaviour rate", ylim=(-0.03, 1.03))
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def measurements_table(report: FindingsReport) -> str:
    keys = sorted({k for m in report.measurements for k in m})
    models = list(dict.fromkeys(k.rpartition(":")[0] for k in keys))
    metrics = list(dict.fromkeys(k.rpartition(":")[2] for k in keys))
    head = "<tr><th class='l'>model</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in metrics) + "</tr>"
    rows = []
    for model in models:
        cells = []
        for metric in metrics:
            vals = [m[f"{model}:{metric}"] for m in report.measurements if m.get(f"{model}:{metric}") is not None]
            cells.append(f"<td>{fmt(float(np.mean(vals))) if vals else '–'}</td>")
        rows.append(f"<tr><td class='l nw'>{html.escape(model)}</td>{''.join(cells)}</tr>")
    return f"<div class='wrap'><table>{head}{''.join(rows)}</table></div>"


def timing(report: FindingsReport) -> str:
    rows = "".join(f"<tr><td class='l'>{html.escape(t['stage'])}</td><td>{t['jobs']}</td><td>{t['skipped']}</td>"
                   f"<td>{t['seconds']:.1f}</td><td>{t.get('job_seconds', 0.0):.1f}</td></tr>" for t in report.stages)
    runs = "".join(f"<li><code>{html.escape(r)}</code></li>" for r in report.runs)
    return (f"<p>Command: <code>{html.escape(report.command)}</code> (resumable: finished stages are "
            f"skipped, so a re-run only redoes what changed).</p>"
            f"<table><tr><th class='l'>stage (all seeds)</th><th>jobs</th><th>skipped (done earlier)</th>"
            f"<th>wall seconds, this invocation</th><th>job seconds, summed (all runs)</th></tr>{rows}</table>"
            f"<p>Run folders (one per seed):</p><ul>{runs}</ul>")
