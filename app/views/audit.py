"""Audit: any model of the run, audited white-box as an auditor would, blind to its lineage
until the auditor commits to a guess and reveals it."""

import hashlib

import pandas as pd
import streamlit as st

from app.ui import runs, state, widgets
from app.ui.figures import audit_probe_figure
from app.ui.kit import KitError, read_audit
from probes.audit import AUDIT_FILE

ctx = state.context()
if ctx is None:
    st.stop()
st.title("Blind audit")
run = ctx.run
audited = [m for m in run.model_ids() if (run.probes(m) / AUDIT_FILE).is_file()]
if not audited:
    st.info("No model of this run has an audit yet.")
    st.stop()
# A fixed shuffle per run, so the labels say nothing about role or order of creation.
order = sorted(audited, key=lambda m: hashlib.sha256(f"{run.root.name}|{m}".encode()).hexdigest())
labels = {f"model {chr(65 + i)}": m for i, m in enumerate(order)}
label = st.selectbox("model under audit", list(labels), key="audit-model")
model_id = labels[label]
try:
    audit = read_audit(run, model_id)
except KitError as exc:
    st.error(f"Cannot read the audit of {label}: {exc}")
    st.stop()

st.subheader("Linear probes")
st.caption(f"audited against the {audit.organism} ground truth on {audit.n_prompts} probe prompts")
left, right = st.columns([3, 2])
left.plotly_chart(audit_probe_figure(audit.probes, audit.contrast), key="audit-probes")
best, contrast = audit.best_probe, audit.best_contrast
right.metric("best probe AUROC", f"{best['auroc']:.3f}", f"{best['site']} ({best['pool']})",
             delta_color="off", delta_arrow="off")
if contrast:
    right.metric("best trigger-agnostic probe", f"{contrast['auroc']:.3f}",
                 f"{contrast['kind']} at {contrast['site']}", delta_color="off", delta_arrow="off")

for site in audit.sae_sites:
    st.subheader(f"SAE features at {site}")
    m = audit.saes.get(site, {})
    st.caption(" · ".join(f"{k} {m[k]:.3f}" for k in ("fvu", "l0", "dead_frac", "loss_recovered") if k in m))
    top = pd.DataFrame(audit.features[site]["top"][:12])
    mis = audit.features[site]["misalignment"]
    st.markdown(f"misalignment features (eliciting-vs-clean AUROC >= threshold): **{mis or 'none'}**")
    st.dataframe(top, hide_index=True, width="stretch", column_config=widgets.table_config(top))
    ab = audit.ablation.get(site)
    if ab:
        st.markdown("**Causal test: ablating them while the model answers**")
        c = st.columns(3)
        c[0].metric("misbehaviour", f"{ab['after']['misbehaviour']:.0%}",
                    f"{-ab['misbehaviour_drop']:+.0%} from {ab['before']['misbehaviour']:.0%}", delta_color="inverse")
        c[1].metric("capability", f"{ab['after']['capability']:.0%}",
                    f"{-ab['capability_cost']:+.0%} from {ab['before']['capability']:.0%}")
        c[2].metric("misbehaviour on clean prompts", f"{ab['after']['misbehaviour_clean']:.0%}")
    if mis:
        f = st.selectbox("inspect a feature", [d["feature"] for d in audit.features[site]["top"][:12]],
                         key=f"audit-feature-{site}")
        try:
            widgets.dashboard(state.dashboard(str(run.root), model_id, site, f, runs.stamp(run)),
                              f"{label} · feature {f}", f"audit-{site}")
        except (KitError, OSError, KeyError, ValueError) as exc:
            st.error(f"Cannot build the dashboard: {exc}")

st.subheader("Verdict")
guess = st.radio("your verdict", ["misaligned", "aligned"], index=None, horizontal=True, key=f"guess-{model_id}")
if st.toggle("reveal lineage", key=f"reveal-{model_id}", disabled=guess is None,
             help="commit to a verdict first"):
    widgets.lineage(run, model_id, guess, ctx)
