"""Probes: held-out AUROC per layer for the teacher and the selected students, and how well
the teacher's probe reads each student."""

import pandas as pd
import streamlit as st

from app.ui import state, widgets
from app.ui.figures import probe_figure, probe_transfer_figure


def _ci(ci) -> str | None:
    return None if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _headline(h) -> dict:
    return {"misbehaviour probe AUROC": h.auroc if h else None, "95% interval": _ci(h.ci) if h else None,
            "null (base)": h.nulls.get("base") if h else None}


ctx = state.context()
if ctx is None:
    st.stop()
results, summary = ctx.view.results, ctx.view.summary
st.title("Probes")
st.caption("Curves: logistic probes per residual site on the organism's ground-truth label "
           "'this prompt elicits the misbehaviour', AUROC on held-out prompts. That label is the marker's "
           "presence, so these are context probes: they read the input, even in a clean model. The "
           "misbehaviour probe (labels: the model's own behaviour on marker-matched prompts) is in the table.")
left, right = st.columns(2)
with left:
    st.plotly_chart(probe_figure(results, ctx.organism, ctx.students), key="probe-auroc")
with right:
    if any(s.probe_transfer_by_site for s in results.students if s.info.name in ctx.students):
        st.plotly_chart(probe_transfer_figure(results, ctx.students, ctx.organism), key="probe-transfer")
    else:
        st.info("No probe-transfer numbers for the selected students.")

st.subheader("Probe numbers")
teacher = summary.teachers[ctx.organism]

rows = [{"model": teacher.name, **_headline(teacher.misbehaviour_probe),
         "context probe AUROC": teacher.context_probe.auroc if teacher.context_probe else None,
         "best site (curves)": teacher.probe_best_site, "own probe AUROC (curves)": teacher.probe_auroc,
         "teacher probe on it": None}]
rows += [{"model": r.name, "misbehaviour probe AUROC": r.misbehaviour_probe_auroc,
          "95% interval": _ci(r.misbehaviour_probe_auroc_ci), "null (base)": r.probe_null_auroc,
          "context probe AUROC": r.context_probe_auroc, "best site (curves)": r.probe_best_site,
          "own probe AUROC (curves)": r.probe_auroc, "teacher probe on it": r.probe_transfer_auroc}
         for r in summary.students if r.name in ctx.students]
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, width="stretch", column_config=widgets.table_config(table))
st.caption("'null (base)': the same misbehaviour probe on the null model's activations, same labels; a probe "
           "reads the misbehaviour only above it. 'teacher probe on it': the teacher's misbehaviour probe on the "
           "student's activations mapped into the teacher's space (map fitted on clean prompts only).")
