"""Features: the teacher's misalignment features matched into each student, and a feature's
dashboard side by side for the teacher and its matched student feature."""

import streamlit as st

from app.ui import runs, state, widgets
from app.ui.kit import KitError
from app.ui.figures import feature_map_figure

ctx = state.context()
if ctx is None:
    st.stop()
st.title("Feature transfer")
maps = {s.info.name: s.feature_map for s in ctx.view.results.students
        if s.info.organism == ctx.organism and s.feature_map and s.feature_map.rows}
shown = [n for n in ctx.students if n in maps]
if not shown:
    st.info("None of the selected students has a feature map (no SAE comparison in this run).")
    st.stop()
st.caption("Rows: the teacher's misalignment SAE features. Cell: activation correlation with the "
           "best-matching student feature (its id; ✓ when that feature is itself a misalignment feature).")
st.plotly_chart(feature_map_figure(ctx.view.results, ctx.organism, shown), key="feature-map")

c1, c2 = st.columns(2)
focus = ctx.focus if ctx.focus in shown else shown[0]
student = c1.selectbox("student", shown, index=shown.index(focus), key="feat-student")
fmap = maps[student]
rows = {r.teacher_feature: r for r in fmap.rows}
feature = c2.selectbox("teacher feature", list(rows), key="feat-feature",
                       format_func=lambda f: f"T{f} (AUROC {rows[f].teacher_auroc:.2f})"
                       if rows[f].teacher_auroc is not None else f"T{f}")
row = rows[feature]

m = st.columns(4)
m[0].metric("match correlation", f"{row.best_corr:.2f}", help="Pearson correlation of the two features' "
            "activations over the same probe prompts")
m[1].metric("matched student feature", f"S{row.best_feature}",
            "a misalignment feature" if row.best_is_misaligned else "an ordinary feature",
            delta_color="inverse" if row.best_is_misaligned else "off", delta_arrow="off")
m[2].metric("Hungarian 1:1 partner", "none" if row.hungarian_feature is None else f"S{row.hungarian_feature}",
            f"corr {row.hungarian_corr:.2f}", delta_color="off", delta_arrow="off")
m[3].metric("decoder cosine", "n/a" if row.decoder_cos is None else f"{row.decoder_cos:.2f}",
            help="teacher decoder row vs the matched student decoder row mapped into teacher space")
xc = ctx.view.record(student).crosscoder
if xc is not None:
    st.caption(f"Crosscoder of teacher and {student} ({xc.n_live} live latents): "
               f"{xc.teacher_only:.0%} teacher-only, {xc.shared:.0%} shared, {xc.student_only:.0%} student-only; "
               f"misalignment latents: {xc.misalignment['teacher-only']} teacher-only, "
               f"{xc.misalignment['shared']} shared, {xc.misalignment['student-only']} student-only.")

root, stamp = str(ctx.run.root), runs.stamp(ctx.run)
left, right = st.columns(2)
try:
    with left:
        widgets.dashboard(state.dashboard(root, ctx.teacher_id, fmap.teacher_site, feature, stamp),
                          f"teacher {ctx.teacher_id} · feature T{feature} at {fmap.teacher_site}", "teacher")
    with right:
        widgets.dashboard(state.dashboard(root, student, fmap.student_site, row.best_feature, stamp),
                          f"student {student} · feature S{row.best_feature} at {fmap.student_site}", "student")
except (OSError, KeyError, ValueError, KitError) as exc:
    st.error(f"Cannot build the dashboard: {exc}")
