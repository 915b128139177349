"""Probes: held-out AUROC per layer for the teacher and the selected students, and how well
the teacher's probe reads each student."""

import pandas as pd
import streamlit as st

from app.ui import state, widgets
from app.ui.figures import probe_figure, probe_transfer_figure

ctx = state.context()
if ctx is None:
    st.stop()
results, summary = ctx.view.results, ctx.view.summary
st.title("Probes")
st.caption("Logistic probes per residual site on the organism's ground-truth label "
           "'this prompt elicits the misbehaviour', AUROC on held-out prompts.")
left, right = st.columns(2)
with left:
    st.plotly_chart(probe_figure(results, ctx.organism, ctx.students), key="probe-auroc")
with right:
    if any(s.probe_transfer_by_site for s in results.students if s.info.name in ctx.students):
        st.plotly_chart(probe_transfer_figure(results, ctx.students), key="probe-transfer")
    else:
        st.info("No probe-transfer numbers for the selected students.")

st.subheader("Probe transfer numbers")
teacher = summary.teachers[ctx.organism]
rows = [{"model": teacher.name, "best site": teacher.probe_best_site,
         "own probe AUROC": teacher.probe_auroc, "teacher probe on it": None}]
rows += [{"model": r.name, "best site": r.probe_best_site, "own probe AUROC": r.probe_auroc,
          "teacher probe on it": r.probe_transfer_auroc}
         for r in summary.students if r.name in ctx.students]
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, width="stretch", column_config=widgets.table_config(table))
st.caption("'teacher probe on it': the teacher's probe applied to the student's activations mapped "
           "into the teacher's space (map fitted on clean prompts only), best teacher site.")
