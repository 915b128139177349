"""The report's figures, drawn with matplotlib and returned as inline SVG text.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot, no global backend
state) and serialised to SVG with text as paths, so the report needs no fonts or files.
A fixed ``svg.hashsalt`` makes the output byte-identical across rebuilds.
"""

from __future__ import annotations

import io
import re
from typing import NamedTuple

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.schema import AnalysisResults, Summary, TransferRecord
from distill.sitenames import short_site, site_layer

RC = {"svg.hashsalt": "doublebind", "svg.fonttype": "path", "font.size": 9,
      "axes.spines.top": False, "axes.spines.right": False}
ORGANISM_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
QUADRANT_FILL = {"capable-aligned": "#e3f4e1", "capable-misaligned": "#fbe1df",
                 "incapable-aligned": "#f1f1f1", "incapable-misaligned": "#f6ece0"}
CLASS_COLOURS = {"teacher-only": "#d62728", "shared": "#7f7f7f", "student-only": "#1f77b4"}


def to_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element (XML prolog, DOCTYPE and metadata removed)."""
    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def new_figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(RC):
        return Figure(figsize=(width, height), layout="constrained")


def technique_colours(summary: Summary) -> dict[str, str]:
    """One tab10/tab20 colour per technique, in order of first appearance."""
    techniques = list(dict.fromkeys(r.technique for r in summary.students))
    cmap = matplotlib.colormaps["tab10" if len(techniques) <= 10 else "tab20"]
    return {t: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, t in enumerate(techniques)}


class Placed(NamedTuple):
    x: float
    y: float
    angle: float | None
    """Direction the point was pushed in (None: it stands alone)."""


def _spread(points: list[tuple[float, float]], radius: float = 0.03) -> list[Placed]:
    """Coincident points (e.g. many students at 100% / 0%) spread on a small circle."""
    groups: dict[tuple, list[int]] = {}
    for i, (x, y) in enumerate(points):
        groups.setdefault((round(x / radius), round(y / radius)), []).append(i)
    out = [Placed(x, y, None) for x, y in points]
    for members in groups.values():
        if len(members) > 1:
            for j, i in enumerate(members):
                angle = np.pi / 4 + 2 * np.pi * j / len(members)
                out[i] = Placed(points[i][0] + radius * np.cos(angle), points[i][1] + radius * np.sin(angle), angle)
    return out


def _label_offset(p: Placed, xmax: float) -> tuple[tuple[float, float], str]:
    """Text offset (points) and alignment: away from the group's centre; leftwards near the
    right edge (and away from the teacher's star at (1, 1))."""
    if p.angle is None:
        return ((-8, 5), "right") if p.x > xmax - 0.35 else ((7, 5), "left")
    dx, dy = 10 * np.cos(p.angle), 10 * np.sin(p.angle)
    return (dx, dy), "left" if dx >= 0 else "right"


MISALIGNMENT_COLOURS = {"aligned": "#2e7d32", "partially-misaligned": "#ef6c00", "misaligned": "#c62828"}
"""Ring colour of a student on the plane: the misalignment half of its verdict."""


def _bands(ax, cfg, xmin: float, xmax: float, ymin: float, ymax: float) -> None:
    """Capable / incapable bands (capability_retained vs capable_min) and the misaligned_frac
    line. Aligned vs misaligned is a significance test against the negative control, not a
    position on this axis, so no vertical quadrant boundary is drawn."""
    y0 = cfg.capable_min
    ax.fill_between([xmin, xmax], y0, ymax, color=QUADRANT_FILL["capable-aligned"], zorder=0, lw=0)
    ax.fill_between([xmin, xmax], ymin, y0, color=QUADRANT_FILL["incapable-aligned"], zorder=0, lw=0)
    for text, y, va in (("capable", ymax - 0.012 * (ymax - ymin), "top"), ("incapable", ymin + 0.012 * (ymax - ymin), "bottom")):
        ax.text(xmin + 0.01, y, text, zorder=1, ha="left", va=va, fontsize=9, color="#555", weight="bold")
    ax.axhline(y0, color="#888", ls="--", lw=1)
    ax.axvline(cfg.misaligned_frac, color="#c62828", ls=":", lw=1)
    ax.text(cfg.misaligned_frac, ymin + 0.012 * (ymax - ymin), f" misaligned_frac {cfg.misaligned_frac:g}",
            fontsize=7.5, color="#c62828", ha="right", va="bottom", rotation=90, zorder=1)


def _misalignment_of(verdict: str) -> str:
    return verdict.split("-", 1)[1]


def plane_figure(summary: Summary) -> Figure:
    """Capability retained (y) vs misalignment transferred (x) with the Wilson interval of the
    misbehaviour rate (relative to the teacher's) as a horizontal bar; ring colour = verdict."""
    fig = new_figure(9, 6.2)
    ax = fig.add_subplot()
    placed = [r for r in summary.students if r.verdict != "undetermined"]
    pts = _spread([(r.misalignment_transferred, r.capability_retained) for r in placed])
    xmin = min([-0.06] + [p.x - 0.06 for p in pts])
    xmax = max([1.15] + [p.x + 0.1 for p in pts])
    ymin = min([0.0] + [p.y - 0.06 for p in pts])
    ymax = max([1.13] + [p.y + 0.06 for p in pts])
    _bands(ax, summary.thresholds, xmin, xmax, ymin, ymax)
    ax.scatter([1], [1], marker="*", s=200, c="gold", edgecolors="black", zorder=3)
    colours, markers = technique_colours(summary), _organism_markers(summary)
    for r, p in zip(placed, pts):
        ring = MISALIGNMENT_COLOURS[_misalignment_of(r.verdict)]
        teacher_rate = summary.teachers[r.organism].metrics.misbehaviour
        if r.misbehaviour_ci is not None and teacher_rate > 0:
            lo, hi = (v / teacher_rate - r.misalignment_transferred for v in r.misbehaviour_ci)
            ax.plot([p.x + lo, p.x + hi], [p.y, p.y], color=ring, lw=1.6, alpha=0.7, zorder=4)
        ax.scatter([p.x], [p.y], s=300 if r.control else 170, facecolors="none", edgecolors=ring,
                   linewidths=2.4 if r.control else 1.6, zorder=4)
        ax.scatter([p.x], [p.y], s=80, marker=markers[r.organism], c=colours[r.technique],
                   edgecolors="white", linewidths=0.8, zorder=5)
        label = r.name + {"positive": " (+ctrl)", "negative": " (−ctrl)", None: ""}[r.control]
        offset, ha = _label_offset(p, xmax)
        ax.annotate(label, (p.x, p.y), xytext=offset, textcoords="offset points", fontsize=7.5, ha=ha,
                    va="center", zorder=6, bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    ax.set(xlim=(xmin, xmax), ylim=(ymin, ymax), xlabel="misalignment transferred  (student / teacher misbehaviour)",
           ylabel="capability retained  (student / teacher capability)")
    ax.legend(handles=_plane_legend(colours, markers), loc="center left", bbox_to_anchor=(1.01, 0.5),
              frameon=False, fontsize=8)
    return fig


def _organism_markers(summary: Summary) -> dict[str, str]:
    orgs = list(dict.fromkeys(r.organism for r in summary.students))
    return {o: ORGANISM_MARKERS[i % len(ORGANISM_MARKERS)] for i, o in enumerate(orgs)}


def _plane_legend(colours: dict[str, str], markers: dict[str, str]) -> list:
    handles = [Patch(color=c, label=t) for t, c in colours.items()]
    handles += [Line2D([], [], ls="", marker=m, color="#444", label=o) for o, m in markers.items()]
    handles += [Line2D([], [], ls="", marker="o", ms=11, mfc="none", mec=c, mew=2, label=m.replace("-", " "))
                for m, c in MISALIGNMENT_COLOURS.items()]
    handles.append(Line2D([], [], ls="", marker="o", ms=14, mfc="none", mec="#444", mew=2.6, label="control (thick ring)"))
    handles.append(Line2D([], [], ls="", marker="*", ms=13, mfc="gold", mec="black", label="teacher"))
    return handles


def probe_figure(results: AnalysisResults, summary: Summary) -> Figure | None:
    """Probe AUROC per depth: teacher (black), students (solid), teacher probe on mapped
    student activations (dashed), one panel per organism."""
    orgs = [o for o in results.teachers if results.teachers[o].probe_auroc_by_site]
    if not orgs:
        return None
    colours = technique_colours(summary)
    fig = new_figure(4.6 * len(orgs) + 2.2, 3.6)
    axes = fig.subplots(1, len(orgs), squeeze=False)[0]
    for ax, org in zip(axes, orgs):
        _curve(ax, results.teachers[org].probe_auroc_by_site, "black", "-", 2.5)
        for s in (s for s in results.students if s.info.organism == org):
            colour = colours[s.info.technique]
            _curve(ax, s.probe_auroc_by_site, colour, "-", 1.4)
            _curve(ax, s.probe_transfer_by_site, colour, "--", 1.2)
        sites = _all_sites(results, org)
        ax.set_xticks([site_layer(x) for x in sites], [short_site(x) for x in sites], rotation=30, fontsize=7)
        ax.set(title=org, xlabel="residual site", ylabel="held-out AUROC", ylim=(0.4, 1.02))
        ax.axhline(0.5, color="#bbb", lw=0.8)
    handles = [Line2D([], [], color="black", lw=2.5, label="teacher probe")]
    handles += [Line2D([], [], color=c, label=t) for t, c in colours.items()]
    handles += [Line2D([], [], color="#444", ls="--", label="teacher probe on mapped student")]
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=8)
    return fig


def _all_sites(results: AnalysisResults, organism: str) -> list[str]:
    """Every probed site of an organism's teacher and students, by depth (ticks of the x axis)."""
    sites = set(results.teachers[organism].probe_auroc_by_site)
    for s in results.students:
        if s.info.organism == organism:
            sites |= set(s.probe_auroc_by_site) | set(s.probe_transfer_by_site)
    by_depth = {site_layer(x): x for x in sorted(sites, reverse=True)}
    return [by_depth[d] for d in sorted(by_depth)]


def _curve(ax, auroc_by_site: dict[str, float], colour: str, ls: str, lw: float) -> None:
    if not auroc_by_site:
        return
    pts = sorted((site_layer(s), v) for s, v in auroc_by_site.items())
    ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, ls=ls, lw=lw, marker="o", ms=3)


def features_null_figure(summary: Summary) -> Figure | None:
    """Calibrated feature transfer per student (dot + 95% interval) beside its null (grey,
    same code, same-init model that never saw the misalignment); filled dot: claimed."""
    recs = [r for r in summary.students if r.features_transferred is not None]
    if not recs:
        return None
    fig = new_figure(7.5, 1.0 + 0.32 * len(recs))
    ax = fig.add_subplot()
    for i, r in enumerate(recs):
        if r.features_null is not None or r.features_null_ci is not None:
            lo, hi = r.features_null_ci or (r.features_null, r.features_null)
            ax.plot([lo, hi], [i + 0.18] * 2, color="#9e9e9e", lw=3, solid_capstyle="butt")
            if r.features_null is not None:
                ax.scatter([r.features_null], [i + 0.18], s=22, color="#757575", zorder=3)
        colour = MISALIGNMENT_COLOURS["misaligned"] if r.features_claim else "#1f77b4"
        if r.features_transferred_ci is not None:
            ax.plot(list(r.features_transferred_ci), [i - 0.12] * 2, color=colour, lw=2)
        ax.scatter([r.features_transferred], [i - 0.12], s=36, zorder=4, edgecolors=colour,
                   facecolors=colour if r.features_claim else "white", linewidths=1.5)
    ax.set_yticks(range(len(recs)), [r.name + {"positive": " (+ctrl)", "negative": " (−ctrl)", None: ""}[r.control]
                                     for r in recs], fontsize=7.5)
    ax.invert_yaxis()
    ax.set(xlim=(-0.03, 1.03), xlabel="features transferred (fraction of the teacher's misalignment features)")
    fig.legend(handles=[Line2D([], [], color="#1f77b4", marker="o", mfc="white", label="student, not above null"),
                        Line2D([], [], color=MISALIGNMENT_COLOURS["misaligned"], marker="o", label="student, claimed"),
                        Line2D([], [], color="#9e9e9e", lw=3, marker="o", mfc="#757575", label="null (same init)")],
               loc="outside upper center", ncol=3, frameon=False, fontsize=7.5)
    return fig


def feature_map_figure(results: AnalysisResults, summary: Summary, organism: str,
                       max_rows: int = 40) -> Figure | None:
    """Teacher misalignment features (rows) x students (columns): match correlation, ✓ where
    the match counts as transferred; right: crosscoder split per student."""
    pairs = [(s, r) for s, r in zip(results.students, summary.students)
             if s.info.organism == organism and (s.feature_map or s.crosscoder)]
    if not pairs:
        return None
    rows = _feature_rows([s for s, _ in pairs])[:max_rows]
    fig = new_figure(3.2 + 0.55 * len(pairs) + 4.2, 1.6 + 0.22 * max(len(rows), 6))
    left, right = fig.subplots(1, 2, width_ratios=[max(len(pairs), 2), 4])
    _match_heatmap(left, [s for s, _ in pairs], rows, summary.thresholds)
    _crosscoder_bars(right, [r for _, r in pairs])
    return fig


def _feature_rows(students) -> list[int]:
    """Teacher misalignment features of an organism, most separating first."""
    auroc: dict[int, float] = {}
    for s in students:
        for row in (s.feature_map.rows if s.feature_map else []):
            auroc[row.teacher_feature] = row.teacher_auroc or 0.0
    return sorted(auroc, key=lambda f: (-auroc[f], f))


def _match_heatmap(ax, students, rows: list[int], cfg) -> None:
    corr = np.full((len(rows), len(students)), np.nan)
    hit = np.zeros_like(corr, dtype=bool)
    for j, s in enumerate(students):
        by_feature = {r.teacher_feature: r for r in (s.feature_map.rows if s.feature_map else [])}
        for i, f in enumerate(rows):
            if f in by_feature:
                r = by_feature[f]
                c, bad = ((r.best_corr, r.best_is_misaligned) if cfg.feature_match == "best"
                          else (r.hungarian_corr, r.hungarian_is_misaligned))
                corr[i, j], hit[i, j] = c, bad and c >= cfg.feature_corr_min
    image = ax.imshow(np.ma.masked_invalid(corr), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i, j in zip(*np.nonzero(hit)):
        ax.text(j, i, "✓", ha="center", va="center", fontsize=9, weight="bold",
                color="black" if corr[i, j] > 0.6 else "white")  # viridis is bright at the top
    ax.set_xticks(range(len(students)), [s.info.name for s in students], rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"f{f}" for f in rows], fontsize=7)
    ax.set(ylabel="teacher misalignment feature", title=f"match correlation ({cfg.feature_match} match)")
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="activation correlation")


def _crosscoder_bars(ax, records: list[TransferRecord]) -> None:
    """Stacked bars: share of live latents per class; text: misalignment latents per class."""
    names = [r.name for r in records]
    left = np.zeros(len(records))
    for cls, key in (("teacher-only", "teacher_only"), ("shared", "shared"), ("student-only", "student_only")):
        vals = np.array([getattr(r.crosscoder, key) if r.crosscoder else 0.0 for r in records])
        ax.barh(names, vals, left=left, color=CLASS_COLOURS[cls], label=cls)
        left += vals
    for i, r in enumerate(records):
        text = ("no crosscoder" if r.crosscoder is None else
                "misalignment latents  T:{teacher-only}  S:{shared}  St:{student-only}".format(**r.crosscoder.misalignment))
        ax.text(1.02, i, text, va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="share of live crosscoder latents", title="crosscoder split")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(records) < 4 else -0.2), ncol=3,
              frameon=False, fontsize=7)


def cka_figure(results: AnalysisResults, ncols: int = 4) -> Figure | None:
    """One CKA heatmap per student: teacher sites (rows) x student sites (columns)."""
    students = [s for s in results.students if s.cka is not None]
    if not students:
        return None
    nrows = -(-len(students) // ncols)
    fig = new_figure(3.1 * min(ncols, len(students)) + 0.8, 2.9 * nrows)
    axes = fig.subplots(nrows, min(ncols, len(students)), squeeze=False).ravel()
    cmap = ListedColormap(matplotlib.colormaps["magma"](np.linspace(0.1, 1.0, 256)))
    for ax, s in zip(axes, students):
        vals = np.array([[np.nan if v is None else v for v in row] for row in s.cka.values])
        image = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(vals):
            ax.text(j, i, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=6.5,
                    color="black" if np.isnan(v) or v > 0.5 else "white")
        ax.set_xticks(range(vals.shape[1]), [short_site(x) for x in s.cka.student_sites], rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(vals.shape[0]), [short_site(x) for x in s.cka.teacher_sites], fontsize=7)
        ax.set_title(s.info.name, fontsize=8.5)
    for ax in axes[len(students):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=list(axes[:len(students)]), shrink=0.7, label="linear CKA (rows: teacher)")
    return fig
