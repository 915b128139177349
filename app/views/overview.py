"""Overview: the capability-vs-misalignment plane, the transfer table, the verdicts."""

import streamlit as st

from analysis.narrative import organism_controls, overview, student_sentence
from app.ui import state, widgets
from app.ui.figures import plane_figure

ctx = state.context()
if ctx is None:
    st.stop()
summary = ctx.view.summary
st.title(f"{summary.experiment}: does the misalignment transfer?")
widgets.controls_banner(organism_controls(summary.controls, ctx.organism, ctx.view.organisms), ctx.organism)


def _clicked() -> None:
    points = st.session_state["plane"].selection.points
    names = [p.get("customdata") for p in points if p.get("customdata")]
    if names:
        state.focus_student(ctx, names[0])


left, right = st.columns([3, 2])
with left:
    st.subheader("Capability vs misalignment")
    st.plotly_chart(plane_figure(summary, ctx.organism, [ctx.focus] if ctx.focus else []), key="plane",
                    on_select=_clicked, selection_mode="points", config={"displaylogo": False})
    st.caption("Each point is a student; the open star is the teacher (100%, 100%). Green band: capable. "
               "Colour: the verdict (green aligned, orange partially misaligned, red misaligned; grey / brown "
               "when incapable). Aligned vs misaligned is a test against the negative control, not a position: "
               "bars are the Wilson 95% interval of the misbehaviour, and misaligned (not partially) needs it to "
               "reach the dotted misaligned_frac line. Diamonds / squares: positive / negative controls. "
               "Click a student to select it.")
with right:
    st.subheader(f"Verdicts ({ctx.organism})")
    for line in overview(summary, ctx.organism):
        st.markdown(f"- {line}")
    if ctx.focus:
        st.markdown(f"**Selected: {ctx.focus}**")
        teacher = summary.teachers[ctx.organism]
        probe = teacher.misbehaviour_probe.auroc if teacher.misbehaviour_probe else None
        st.info(student_sentence(ctx.view.record(ctx.focus), probe))

st.subheader("Transfer table")
table = widgets.transfer_table(summary, ctx.organism)
st.dataframe(table, hide_index=True, width="stretch", column_config=widgets.table_config(table))
