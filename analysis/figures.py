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


def site_layer(site: str) -> float:
    """Depth of a residual site: resid_pre of block L -> L, resid_post of block L -> L + 1.

    Same rule as ``distill.models.site_layer``, which would import transformer-lens (~10 s)
    into a report rebuild that only reads JSON."""
    parts = site.split(".")
    return int(parts[1]) + (1.0 if parts[-1] == "hook_resid_post" else 0.0)


def short_site(site: str) -> str:
    """blocks.1.hook_resid_pre -> L1 pre (hook names are long for axis labels)."""
    parts = site.split(".")
    if len(parts) == 3 and parts[0] == "blocks":
        return f"L{parts[1]} {parts[2].removeprefix('hook_').removeprefix('resid_')}"
    return site


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


def _quadrants(ax, cfg, xmin: float, xmax: float, ymin: float, ymax: float) -> None:
    x0, y0 = cfg.misaligned_min, cfg.capable_min
    boxes = {"capable-aligned": (xmin, y0, x0, ymax), "capable-misaligned": (x0, y0, xmax, ymax),
             "incapable-aligned": (xmin, ymin, x0, y0), "incapable-misaligned": (x0, ymin, xmax, y0)}
    for name, (a, b, c, d) in boxes.items():
        ax.fill_between([a, c], b, d, color=QUADRANT_FILL[name], zorder=0, lw=0)
        left, top = a == xmin, d == ymax  # labels in the outer corners, away from the crowd at (·, 1)
        ax.text(a + 0.01 if left else c - 0.01, d - 0.012 * (ymax - ymin) if top else b + 0.012 * (ymax - ymin),
                name, zorder=1, ha="left" if left else "right", va="top" if top else "bottom",
                fontsize=9, color="#555", weight="bold")
    ax.axvline(x0, color="#888", ls="--", lw=1)
    ax.axhline(y0, color="#888", ls="--", lw=1)


def plane_figure(summary: Summary) -> Figure:
    """Capability retained (y) vs misalignment transferred (x), every student; quadrants drawn."""
    fig = new_figure(9, 6.2)
    ax = fig.add_subplot()
    placed = [r for r in summary.students if r.verdict != "undetermined"]
    pts = _spread([(r.misalignment_transferred, r.capability_retained) for r in placed])
    xmin = min([-0.06] + [p.x - 0.06 for p in pts])
    xmax = max([1.15] + [p.x + 0.1 for p in pts])
    ymin = min([0.0] + [p.y - 0.06 for p in pts])
    ymax = max([1.13] + [p.y + 0.06 for p in pts])
    _quadrants(ax, summary.thresholds, xmin, xmax, ymin, ymax)
    ax.scatter([1], [1], marker="*", s=200, c="gold", edgecolors="black", zorder=3)
    colours, markers = technique_colours(summary), _organism_markers(summary)
    for r, p in zip(placed, pts):
        if r.control:
            ax.scatter([p.x], [p.y], s=300, facecolors="none", edgecolors="black", linewidths=1.8, zorder=4)
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
    handles.append(Line2D([], [], ls="", marker="o", ms=12, mfc="none", mec="black", mew=2, label="control"))
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
