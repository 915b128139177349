"""Playground: build a prompt, run the teacher and students side by side, read them
white-box (probe score and top SAE features per token), steer and compare."""

import streamlit as st

from app.ui import state, widgets
from app.ui.query import Steering, read_prompt

ctx = state.context()
if ctx is None:
    st.stop()
st.title("Playground")
prompt_ids = widgets.prompt_builder()
if prompt_ids is None:
    st.stop()

models = [ctx.teacher_id] + ctx.view.students(ctx.organism)
default = [ctx.teacher_id] + ([ctx.focus] if ctx.focus else [])
chosen = st.multiselect("models", models, default=default, key="pg-models")
with st.expander("Probe and steering", expanded=False):
    teacher = state.get_kit(ctx, ctx.teacher_id)
    sites = teacher.probe_sites if teacher is not None else []
    site = st.selectbox("probe site (last-position probe)", ["best"] + sites, key="pg-site",
                        help="'best': each model's best last-position probe")
    coef = st.slider("subtract the probe direction at the probe's site (x the prompt's mean residual norm there)",
                     0.0, 2.0, 0.0, 0.05, key="pg-coef")
    st.caption("Feature ablation is chosen per model below (each model has its own SAE).")

for column, model_id in zip(st.columns(max(len(chosen), 1)), chosen):
    with column:
        st.markdown(f"#### {model_id}")
        kit = state.get_kit(ctx, model_id)
        if kit is None:
            continue
        ablate = widgets.ablation_picker(kit)
        probe_site = None if site == "best" or site not in kit.probe_sites else site
        widgets.reading(read_prompt(kit, prompt_ids, Steering(coef, tuple(ablate)), probe_site), kit)
