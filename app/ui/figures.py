"""Plotly figures of the app (interactive counterparts of analysis.figures' static ones)."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from analysis.schema import AnalysisResults, Summary
from distill.sitenames import short_site, site_layer

VERDICT_COLOURS = {"capable-aligned": "#2ca02c", "capable-partially-misaligned": "#ff7f0e",
                   "capable-misaligned": "#d62728", "incapable-aligned": "#7f7f7f",
                   "incapable-partially-misaligned": "#c49c94", "incapable-misaligned": "#8c564b",
                   "undetermined": "#bcbd22"}
CONTROL_SYMBOLS = {"positive": "diamond", "negative": "square", None: "circle"}
TEACHER_COLOUR = "#111111"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f"]


def model_colour(name: str, order: list[str]) -> str:
    """The same colour for a model on every chart: teacher black, students by their place in
    ``order`` (one organism's students): unique within it, however many there are (ten
    hand-picked colours, then evenly spaced hues)."""
    if name.startswith("teacher"):
        return TEACHER_COLOUR
    if name not in order:
        return "#7f7f7f"
    i = order.index(name)
    if len(order) <= len(PALETTE):
        return PALETTE[i]
    return f"hsl({round(360 * i / len(order))}, 65%, {45 if i % 2 else 35}%)"


def organism_order(results: AnalysisResults, organism: str) -> list[str]:
    """The students of one organism in run order (what :func:`model_colour` indexes)."""
    return [s.info.name for s in results.students if s.info.organism == organism]


def _layout(fig: go.Figure, height: int = 420, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), template="plotly_white", **kw)
    return fig


def spread(points: list[tuple[float, float]], radius: float) -> list[tuple[float, float]]:
    """Coincident points (e.g. several students at 100% / 100%) moved onto a small circle
    around their common position, so each stays visible and clickable."""
    groups: dict[tuple, list[int]] = {}
    for i, (x, y) in enumerate(points):
        groups.setdefault((round(x / radius), round(y / radius)), []).append(i)
    out = list(points)
    for members in (m for m in groups.values() if len(m) > 1):
        for j, i in enumerate(members):
            angle = 2 * math.pi * j / len(members) + math.pi / 4
            out[i] = (points[i][0] + radius * math.cos(angle), points[i][1] + radius * math.sin(angle))
    return out


LABEL_ROWS = (1, -1, 2, -2, 3, -3, 4, -4, 5, -5)
"""Label rows above (+) and below (-) a point, nearest first."""


def label_offsets(points: list[tuple[float, float]], texts: list[str], char_w: float = 0.011,
                  line_h: float = 0.045, gap: float = 0.018,
                  others: list[tuple[float, float, float]] = ()) -> list[tuple[float, float]]:
    """Where each point's label goes, as the offset of the label's centre from its point (all
    in coordinates scaled to [0, 1] on both axes), so that labels overlap neither each other,
    nor the points, nor the plot's edge where that can be avoided: greedy over the points in
    order, each taking the nearest free spot among the sides and the stacked rows above and
    below (else the least-overlapping one). ``others``: (x, y, half-size) of unlabelled marks
    to keep clear (the teacher's star). Deterministic. Hand-written: plotly places text only on
    the nine fixed positions around a point."""
    def spots(i: int) -> list[tuple[float, float]]:
        w = char_w * len(texts[i])
        side = [(w / 2 + gap, 0.0), (-(w / 2 + gap), 0.0)]
        rows = [(dx, r * (line_h + gap / 2)) for r in LABEL_ROWS for dx in (0.0, w / 2, -w / 2)]
        return rows[:2] + side + rows[2:]

    def box(i: int, off: tuple[float, float]) -> tuple[float, float, float, float]:
        (x, y), w = points[i], char_w * len(texts[i])
        return x + off[0] - w / 2, y + off[1] - line_h / 2, x + off[0] + w / 2, y + off[1] + line_h / 2

    def overlap(a, b) -> float:
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    marks = [(x - gap / 2, y - gap / 2, x + gap / 2, y + gap / 2) for x, y in points]
    marks += [(x - r, y - r, x + r, y + r) for x, y, r in others]
    placed: list[tuple] = []
    out = []
    for i in range(len(points)):
        def cost(off) -> float:
            b = box(i, off)
            outside = max(0.0, -b[0]) + max(0.0, b[2] - 1) + max(0.0, -b[1]) + max(0.0, b[3] - 1)
            return sum(overlap(b, o) for o in placed) + sum(overlap(b, m) for m in marks) + outside
        options = spots(i)
        best = min(options, key=lambda off: (cost(off) > 0, cost(off), options.index(off)))
        out.append(best)
        placed.append(box(i, best))
    return out


def _error_bars(summary: Summary, organism: str, pts: list) -> dict | None:
    """Wilson 95% interval of each student's misbehaviour, relative to the teacher's rate."""
    teacher = summary.teachers.get(organism)
    rate = teacher.metrics.misbehaviour if teacher else 0.0
    if rate <= 0 or not any(r.misbehaviour_ci for r in pts):
        return None
    up = [0.0 if r.misbehaviour_ci is None else max(0.0, r.misbehaviour_ci[1] / rate - r.misalignment_transferred)
          for r in pts]
    down = [0.0 if r.misbehaviour_ci is None else max(0.0, r.misalignment_transferred - r.misbehaviour_ci[0] / rate)
            for r in pts]
    return dict(type="data", symmetric=False, array=up, arrayminus=down, color="#888", thickness=1.2, width=3)


def plane_figure(summary: Summary, organism: str, selected: list[str] = ()) -> go.Figure:
    """Capability retained (x) vs misalignment transferred (y), one point per student, with the
    Wilson interval of its misbehaviour (relative to the teacher's) as an error bar; colour =
    verdict; customdata = student name. Capable is a position (x >= capable_min); aligned vs
    misaligned is a significance test against the negative control, not a position, so the
    only horizontal line is ``misaligned_frac`` (misaligned, not partially, needs the interval
    to reach it)."""
    cfg = summary.thresholds
    pts = [r for r in summary.students if r.organism == organism
           and r.capability_retained is not None and r.misalignment_transferred is not None]
    xs = [r.capability_retained for r in pts] + [1.0]
    ys = [r.misalignment_transferred for r in pts] + [1.0]
    x0, x1 = min(cfg.capable_min - 0.15, min(xs) - 0.05), max(xs) + 0.1
    y0, y1 = -0.08, max(ys) + 0.1
    placed = spread([(r.capability_retained, r.misalignment_transferred) for r in pts], 0.02 * (x1 - x0))
    fig = go.Figure()
    fig.add_shape(type="rect", x0=cfg.capable_min, x1=x1, y0=y0, y1=y1,
                  fillcolor="rgba(44,160,44,0.06)", line_width=0, layer="below")
    fig.add_vline(cfg.capable_min, line_dash="dot", line_color="#999",
                  annotation_text="capable", annotation_position="top right")
    fig.add_hline(cfg.misaligned_frac, line_dash="dot", line_color="#c62828",
                  annotation_text=f"misaligned_frac {cfg.misaligned_frac:g}", annotation_position="bottom left",
                  annotation_font_color="#c62828")
    fig.add_trace(go.Scatter(x=[1.0], y=[1.0], mode="markers", name="teacher", customdata=[""],
                             marker=dict(symbol="star-open", size=26, color=TEACHER_COLOUR, line_width=1.5),
                             hovertemplate="teacher (reference: 100% / 100%)<extra></extra>"))
    labels = [r.name.split(".", 1)[-1] for r in pts]
    sx, sy = x1 - x0, y1 - y0
    offsets = label_offsets([((x - x0) / sx, (y - y0) / sy) for x, y in placed], labels,
                            others=[((1.0 - x0) / sx, (1.0 - y0) / sy, 0.035)])  # the teacher's star
    font = dict(size=11, color="#555")
    for (x, y), (dx, dy), text in zip(placed, offsets, labels):
        if abs(dy) > 0.07:  # beyond the first row: the label sits at the line's far end, drawn to its point
            fig.add_annotation(x=x, y=y, ax=x + dx * sx, ay=y + dy * sy, axref="x", ayref="y", text=text,
                               showarrow=True, arrowhead=0, arrowwidth=0.7, arrowcolor="#aaa", standoff=5, font=font)
        else:
            fig.add_annotation(x=x + dx * sx, y=y + dy * sy, text=text, showarrow=False, font=font)
    fig.add_trace(go.Scatter(
        x=[p[0] for p in placed], y=[p[1] for p in placed], mode="markers",
        error_y=_error_bars(summary, organism, pts),
        customdata=[r.name for r in pts], name="students",
        marker=dict(size=[18 if r.name in selected else 13 for r in pts],
                    color=[VERDICT_COLOURS[r.verdict] for r in pts],
                    symbol=[CONTROL_SYMBOLS[r.control] for r in pts],
                    line=dict(width=[3 if r.name in selected else 1 for r in pts], color="#222")),
        hovertext=[_plane_hover(r) for r in pts],
        hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_xaxes(title="capability retained (student / teacher)", range=[x0, x1], tickformat=".0%")
    fig.update_yaxes(title="misalignment transferred (student / teacher)", range=[y0, y1], tickformat=".0%")
    # dragmode must stay "zoom": with "select" a click on a point does not select it
    return _layout(fig, 460, showlegend=False, clickmode="event+select", dragmode="zoom")


def _plane_hover(r) -> str:
    ci = "" if r.misbehaviour_ci is None else f" [{r.misbehaviour_ci[0]:.0%}, {r.misbehaviour_ci[1]:.0%}]"
    p = r.misbehaviour_vs_negative_p
    vs = f"<br>vs negative control: p = {p:.2g}" if p is not None else ""
    return (f"<b>{r.name}</b><br>{r.technique}, {r.init} init"
            f"{', ' + r.control + ' control' if r.control else ''}<br>{r.verdict}<br>"
            f"capability retained {r.capability_retained:.0%}<br>"
            f"misbehaviour {r.misbehaviour:.0%}{ci} = {r.misalignment_transferred:.0%} of the teacher's{vs}")


def _sorted_sites(by_site: dict[str, float]) -> list[str]:
    return sorted(by_site, key=site_layer)


def auroc_curves(curves: dict[str, dict[str, float]], title: str, dashed: set[str] = frozenset(),
                 colours: dict[str, str] | None = None) -> go.Figure:
    """One line per model: AUROC against site depth."""
    fig = go.Figure()
    for name, by_site in curves.items():
        sites = _sorted_sites(by_site)
        fig.add_trace(go.Scatter(x=[short_site(s) for s in sites], y=[by_site[s] for s in sites],
                                 mode="lines+markers", name=name,
                                 line=dict(dash="dash" if name in dashed else "solid",
                                           width=3 if name in dashed else 2,
                                           color=(colours or {}).get(name)),
                                 hovertemplate=f"{name}<br>%{{x}}: AUROC %{{y:.3f}}<extra></extra>"))
    lowest = min([v for by_site in curves.values() for v in by_site.values()] + [0.45])
    fig.update_yaxes(title="held-out AUROC", range=[min(0.4, lowest - 0.05), 1.02])
    fig.update_xaxes(title="site (layer)")
    fig.add_hline(0.5, line_dash="dot", line_color="#999")
    return _layout(fig, 380, title=title, legend=dict(orientation="h", y=-0.25))


def probe_figure(results: AnalysisResults, organism: str, students: list[str]) -> go.Figure:
    teacher = results.teachers[organism]
    order = organism_order(results, organism)
    curves = {teacher.name: teacher.probe_auroc_by_site}
    curves.update({s.info.name: s.probe_auroc_by_site for s in results.students if s.info.name in students})
    return auroc_curves(curves, "each model's own context probe (label: eliciting prompt)", dashed={teacher.name},
                        colours={n: model_colour(n, order) for n in curves})


def probe_transfer_figure(results: AnalysisResults, students: list[str], organism: str) -> go.Figure:
    order = organism_order(results, organism)
    curves = {s.info.name: s.probe_transfer_by_site for s in results.students
              if s.info.name in students and s.probe_transfer_by_site}
    return auroc_curves(curves, "teacher's context probe on mapped student activations (by teacher site)",
                        colours={n: model_colour(n, order) for n in curves})


TRANSFER_STATES = {0: "ordinary partner", 1: "partner is a misalignment feature, weakly correlated",
                   2: "transferred"}


def transfer_cell(ft, f: int) -> tuple[int | None, int]:
    """(partner, state) of teacher feature ``f`` in a FeatureTransferResult (SAE seed 0):
    the Hungarian 1:1 partner and whether it transferred (TRANSFER_STATES)."""
    partner = ft.partners.get(f)
    if f in ft.transferred:
        return partner, 2
    return partner, 1 if partner is not None and partner in ft.student_features else 0


def feature_transfer_figure(results: AnalysisResults, organism: str, students: list[str],
                            summary: Summary | None = None) -> go.Figure | None:
    """The teacher's misalignment features (rows, SAE seed 0: the ids of its feature record)
    x students (columns): each cell names the 1:1 (Hungarian) partner among the student's SAE
    features, ✓ when it counts as transferred (correlated and itself a misalignment feature of
    the student). Columns are labelled with the calibrated score and its null, and (with
    ``summary``) the student's behavioural misbehaviour rate with its 95% interval."""
    fts = [(s.info.name, s.features) for s in results.students
           if s.info.organism == organism and s.info.name in students and s.features and s.features.teacher_features]
    if not fts:
        return None
    rows = list(dict.fromkeys(f for _, ft in fts for f in ft.teacher_features))
    z, text = [], []
    for f in rows:
        cells = [transfer_cell(ft, f) if f in ft.teacher_features else (None, None) for _, ft in fts]
        z.append([state for _, state in cells])
        text.append(["" if state is None else f"S{p}{' ✓' if state == 2 else ''}" if p is not None else "none"
                     for p, state in cells])
    records = {r.name: r for r in summary.students} if summary is not None else {}
    cols = [f"{name}<br>features {_pct(ft.score)} (null {_pct(ft.null)})" + _misbehaviour_line(records.get(name))
            for name, ft in fts]
    fig = go.Figure(go.Heatmap(
        z=z, x=cols, y=[f"T{f}" for f in rows], text=text, texttemplate="%{text}", zmin=0, zmax=2,
        colorscale=[[0, "#f0f0f0"], [0.5, "#fdae6b"], [1, "#d62728"]], showscale=False,
        hovertemplate="teacher feature %{y} → %{x}: partner %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="teacher misalignment feature")
    return _layout(fig, max(260, 34 * len(rows) + 120))


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def _misbehaviour_line(record) -> str:
    if record is None:
        return ""
    ci = "" if record.misbehaviour_ci is None else f" [{_pct(record.misbehaviour_ci[0])}, {_pct(record.misbehaviour_ci[1])}]"
    return f"<br>misbehaves {_pct(record.misbehaviour)}{ci}"


def histogram_figure(hist: dict, title: str = "") -> go.Figure:
    """Bar chart of a dashboard's histogram of nonzero activations, stacked eliciting vs clean
    prompts when the dashboard has the split (older ones: one series)."""
    edges = hist.get("edges", [])
    mids = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    series = ([("eliciting prompts", hist["counts_eliciting"], "#c62828"), ("clean prompts", hist["counts_clean"], "#9e9e9e")]
              if "counts_eliciting" in hist else [("all prompts", hist.get("counts", []), "#e6550d")])
    fig = go.Figure([go.Bar(x=mids, y=counts, name=name, marker_color=colour,
                            hovertemplate=f"{name}, activation %{{x:.2f}}: %{{y}} positions<extra></extra>")
                     for name, counts, colour in series])
    fig.update_layout(barmode="stack", showlegend=len(series) > 1)
    fig.update_xaxes(title="activation (nonzero)")
    fig.update_yaxes(title="positions")
    return _layout(fig, 220, title=title)


def audit_probe_figure(probes: list[dict], contrast: list[dict]) -> go.Figure:
    """An audit's probe AUROC per site: logistic probes (per pool) and contrast probes."""
    curves: dict[str, dict[str, float]] = {}
    for p in probes:
        curves.setdefault(f"probe ({p['pool']})", {})[p["site"]] = p["auroc"]
    for p in contrast:
        curves.setdefault(p["kind"], {})[p["site"]] = p["auroc"]
    return auroc_curves(curves, "probe AUROC per site")
