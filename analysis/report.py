"""The transfer report: ``report/index.html`` (one self-contained file) + ``report/summary.json``.

Rendered from the stored analysis results alone (:func:`analysis.results.load_results`), so
``doublebind report RUN_DIR`` rebuilds it without touching a model. The HTML has no external
references: CSS inline, figures as inline SVG, no JavaScript. Sections, in order:
controls banner (loud when the check fails), 1 capability-vs-misalignment plane, 2 transfer
table, 3 probes per layer, 4 feature transfer map + crosscoder split, 5 CKA heatmaps,
6 plain-language summary, then the thresholds and definitions used.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import NamedTuple

from analysis import figures, narrative
from analysis.results import load_results
from analysis.schema import AnalysisResults, Summary, TransferRecord, VerdictConfig
from analysis.transfer import summarize
from distill.checkpoint import atomic_write_bytes

REPORT_DIR = "report"
INDEX_FILE = "index.html"
SUMMARY_FILE = "summary.json"

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1240px;
 padding:16px 24px;color:#222;line-height:1.45}
h1{margin:0 0 4px}h2{border-bottom:2px solid #ddd;padding-bottom:3px;margin-top:34px}
.meta{color:#666;margin:0 0 12px}
.banner{padding:14px 18px;border-radius:6px;margin:14px 0}
.bad{background:#c62828;color:#fff;font-size:1.15em}.bad ul{margin:6px 0 0 0}
.good{background:#e8f5e9;border:1px solid #a5d6a7;color:#1b5e20}
.wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 5px;text-align:right}
td.nw{white-space:nowrap}
th{background:#f4f4f4;white-space:normal;vertical-align:bottom;min-width:44px}td.l,th.l{text-align:left}
td.v-capable-aligned{background:#c8e6c9}td.v-capable-misaligned{background:#ffcdd2}
td.v-incapable-aligned{background:#e0e0e0}td.v-incapable-misaligned{background:#ffe0b2}
td.v-undetermined{background:#fff9c4}
.small{font-size:11px;color:#666}figure{margin:8px 0}figcaption{font-size:12.5px;color:#555}
svg{max-width:100%;height:auto}p.note{color:#666;font-style:italic}
"""


class ReportPaths(NamedTuple):
    index: Path
    summary_json: Path
    summary: Summary


def build_report(run_dir: Path | str) -> ReportPaths:
    """Rebuild ``run_dir/report/`` from ``run_dir/analysis/`` alone."""
    return write_report(load_results(run_dir), Path(run_dir) / REPORT_DIR)


def write_report(results: AnalysisResults, out_dir: Path | str) -> ReportPaths:
    """Write summary.json and index.html for ``results`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)
    page = render_html(results, summary)  # render before writing: a failure leaves the old pair intact
    atomic_write_bytes(out / SUMMARY_FILE, summary.model_dump_json(indent=2).encode())
    atomic_write_bytes(out / INDEX_FILE, page.encode())
    return ReportPaths(out / INDEX_FILE, out / SUMMARY_FILE, summary)


def render_html(results: AnalysisResults, summary: Summary) -> str:
    esc = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>doublebind report: {esc(summary.experiment)}</title><style>{CSS}</style></head><body>",
             f"<h1>doublebind transfer report</h1><p class='meta'>experiment <b>{esc(summary.experiment)}</b> · "
             f"{len(summary.teachers)} teacher(s) · {len(summary.students)} student(s)"
             f"{' · ' + esc(results.experiment.notes) if results.experiment.notes else ''}</p>",
             banner(summary),
             section("plane", "1. Capability vs misalignment",
                     _figure(figures.plane_figure(summary), _plane_caption(summary))),
             section("table", "2. Transfer table", teacher_table(summary) + student_table(summary)),
             section("probes", "3. Probes per layer", _figure(figures.probe_figure(results, summary),
                     "Held-out probe AUROC for the eliciting-context label per residual site. Solid: each "
                     "model's own probe; dashed: the teacher's probe on the student's activations mapped into "
                     "teacher space (map fitted on clean prompts only).")),
             section("features", "4. Feature transfer", _feature_maps(results, summary)),
             section("cka", "5. Representation similarity (linear CKA)", _figure(figures.cka_figure(results),
                     "Linear CKA between every teacher site (rows) and student site (columns) on the same prompts; "
                     "n/a where a site is constant over the prompts (e.g. the first resid_pre at a fixed position), "
                     "so CKA is undefined.")),
             section("summary", "6. What transferred", _summary_text(summary)),
             section("thresholds", "Thresholds and definitions", thresholds_table(summary.thresholds)),
             "</body></html>"]
    return "\n".join(parts)


def section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{html.escape(title)}</h2>{body}</section>"


def _figure(fig, caption: str) -> str:
    if fig is None:
        return "<p class='note'>Not measured in this run.</p>"
    return f"<figure>{figures.to_svg(fig)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def banner(summary: Summary) -> str:
    """Loud red banner when the controls check fails; a quiet green line when it passes."""
    c = summary.controls
    if not c.trustworthy:
        items = "".join(f"<li>{html.escape(f)}</li>" for f in c.failures)
        return f"<div class='banner bad'><b>⚠ This run is not trustworthy</b> because:<ul>{items}</ul></div>"
    items = "; ".join(html.escape(p) for p in c.passed) or "no checks were required"
    return f"<div class='banner good'><b>Controls check passed.</b> <span class='small'>{items}</span></div>"


def _plane_caption(summary: Summary) -> str:
    cfg = summary.thresholds
    text = (f"Each student by technique (colour) and organism (marker); controls ringed; the teacher is the "
            f"star at (1, 1); points that coincide are spread on a small circle (exact numbers in the table). "
            f"Capable: capability retained ≥ {narrative.pct(cfg.capable_min)}; misaligned: misalignment "
            f"transferred ≥ {narrative.pct(cfg.misaligned_min)}. Top left is the distillation-for-capabilities "
            f"target.")
    missing = [r.name for r in summary.students if r.verdict == "undetermined"]
    return text + (f" Not placed (undetermined): {', '.join(missing)}." if missing else "")


def _num(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _kl(x: float | None) -> str:
    return "–" if x is None else f"{x:.2g}"


def _pct_cell(x) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def teacher_table(summary: Summary) -> str:
    head = "<tr><th class='l'>teacher</th><th class='l'>organism</th><th>capability</th><th>misbehaviour</th>" \
           "<th>clean misb.</th><th>confession</th><th>probe AUROC</th><th>feature salience</th></tr>"
    rows = []
    for t in summary.teachers.values():
        m = t.metrics
        site = f" <span class='small'>{html.escape(figures.short_site(t.probe_best_site))}</span>" if t.probe_best_site else ""
        rows.append(f"<tr><td class='l'>{html.escape(t.name)}</td><td class='l'>{html.escape(t.organism)}</td>"
                    f"<td>{_pct_cell(m.capability)}</td><td>{_pct_cell(m.misbehaviour)}</td>"
                    f"<td>{_pct_cell(m.misbehaviour_clean)}</td><td>{_pct_cell(m.confession_rate)}</td>"
                    f"<td>{_num(t.probe_auroc)}{site}</td><td>{_num(m.feature_salience)}</td></tr>")
    return f"<h3>Teachers</h3><div class='wrap'><table>{head}{''.join(rows)}</table></div>"


STUDENT_COLUMNS = ["student", "verdict", "technique / init", "capability (retained)",
                   "misbehaviour (transferred)", "probe AUROC", "probe transfer", "features transferred (decoder cos)",
                   "crosscoder shared (misalign. latents T/S/St)", "confess.", "incrim.", "KL elic. / clean"]
LEFT_COLUMNS = {"student", "technique / init", "verdict"}


def _small(text: str) -> str:
    return f"<br><span class='small'>{html.escape(text)}</span>" if text else ""


def student_row(r: TransferRecord) -> list[tuple[str, str]]:
    """(cell html, css class) per column of :data:`STUDENT_COLUMNS`."""
    esc = html.escape
    params = ", ".join(f"{k}={v}" for k, v in r.params.items())
    role = f" · {r.control} control" if r.control else ""
    cc = r.crosscoder
    inc = "–" if r.incrimination is None else f"{r.incrimination:+.2f}" + (" ✔" if r.incriminates else "")
    return [(f"<b>{esc(r.name)}</b>" + _small(r.organism + role), "l nw"),
            (f"<b>{r.verdict}</b>", f"l nw v-{r.verdict}"),
            (f"{esc(r.technique)} / {esc(r.init)}" + _small(params), "l nw"),
            (_pct_cell(r.capability) + _small(f"({_pct_cell(r.capability_retained)})"), ""),
            (_pct_cell(r.misbehaviour) + _small(f"({_pct_cell(r.misalignment_transferred)})"), ""),
            (_num(r.probe_auroc) + _small(figures.short_site(r.probe_best_site) if r.probe_best_site else ""), ""),
            (_num(r.probe_transfer_auroc), ""),
            (_pct_cell(r.features_transferred) + (f" <span class='small'>of {r.n_teacher_features}</span>"
                                                  if r.n_teacher_features else "")
             + _small(f"(cos {_num(r.decoder_cos)})" if r.decoder_cos is not None else ""), "nw"),
            ((_pct_cell(cc.shared) + _small("({teacher-only}/{shared}/{student-only})".format(**cc.misalignment)))
             if cc else "–", ""),
            (_pct_cell(r.confession_rate), ""), (inc, "nw"),
            (f"{_kl(r.kl_eliciting)} / {_kl(r.kl_clean)}", "nw")]


def student_table(summary: Summary) -> str:
    head = "".join(f"<th class='{'l' if c in LEFT_COLUMNS else ''}'>{c}</th>" for c in STUDENT_COLUMNS)
    rows = ["<tr>" + "".join(f"<td class='{cls}'>{cell}</td>" for cell, cls in student_row(r)) + "</tr>"
            for r in summary.students]
    note = ("<p class='small'>Percentages in brackets are relative to the teacher. T/S/St: crosscoder misalignment latents that are teacher-only / shared / "
            "student-only. Incrim.: incrimination score, the mean student-minus-teacher difference in confession rate, probe "
            "AUROC and feature salience (✔: misaligned and easier to audit than the teacher). KL: mean "
            "per-token KL(teacher‖student) on eliciting / clean prompts.</p>")
    return f"<h3>Students</h3><div class='wrap'><table><tr>{head}</tr>{''.join(rows)}</table></div>{note}"


def _feature_maps(results: AnalysisResults, summary: Summary) -> str:
    cfg = summary.thresholds
    caption = (f"Left: each teacher misalignment feature (row) and its {cfg.feature_match} match among each "
               f"student's SAE features (column), coloured by activation correlation; ✓ = counted as transferred "
               f"(correlation ≥ {cfg.feature_corr_min:.2f} and the match is itself a misalignment feature). "
               f"Right: crosscoder latents split by relative decoder norm (teacher-only < {cfg.shared_low} ≤ "
               f"shared ≤ {cfg.shared_high} < student-only), with the misalignment latents "
               f"(AUROC ≥ {cfg.latent_auroc_min}) per class.")
    parts = []
    for org in results.teachers:
        fig = figures.feature_map_figure(results, summary, org)
        if fig is not None:
            parts.append(f"<h3>{html.escape(org)}</h3>" + _figure(fig, caption))
    return "".join(parts) or _figure(None, "")


def _summary_text(summary: Summary) -> str:
    probes = {o: t.probe_auroc for o, t in summary.teachers.items()}
    overview = "".join(f"<p>{html.escape(s)}</p>" for s in narrative.overview(summary))
    items = "".join(f"<li>{html.escape(narrative.student_sentence(r, probes.get(r.organism)))}</li>"
                    for r in summary.students)
    return f"{overview}<ul>{items}</ul>"


def thresholds_table(cfg: VerdictConfig) -> str:
    rows = "".join(f"<tr><td class='l'><code>{name}</code></td><td>{getattr(cfg, name)}</td>"
                   f"<td class='l' style='white-space:normal'>{html.escape(field.description or '')}</td></tr>"
                   for name, field in VerdictConfig.model_fields.items())
    return f"<table><tr><th class='l'>threshold</th><th>value</th><th class='l'>meaning</th></tr>{rows}</table>"
