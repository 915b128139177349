"""Audit: any model of the run, audited white-box as an auditor would, blind until the
auditor commits to a verdict.

Blind means: models are labelled A, B, ... in an order shuffled for each session; nothing
before the verdict names the organism, the lineage or a behavioural rate (the causal test,
which measures misbehaviour, waits for the reveal); the rule the verdict is scored by is shown
before the guess; a committed verdict is locked and goes on the session's scoreboard.
"""

import secrets

import pandas as pd
import streamlit as st

from app.ui import runs, state, widgets
from app.ui.blind import blind_labels, score
from app.ui.featureset import CONTEXT_LABEL, model_features
from app.ui.figures import audit_probe_figure
from app.ui.kit import KitError, read_audit
from probes.audit import AUDIT_FILE


SALT_KEY = "audit-salt"
VERDICTS_KEY = "audit-verdicts"


def shuffled_labels(models: list[str], run_key: str) -> dict[str, str]:
    """label -> model id, in an order drawn afresh for each session (and run): the labels say
    nothing about role or order of creation, and a second session cannot map them from memory."""
    return blind_labels(models, run_key, st.session_state.setdefault(SALT_KEY, secrets.token_hex(16)))


def committed() -> dict:
    """This session's locked verdicts: {(run, model id): verdict}."""
    return st.session_state.setdefault(VERDICTS_KEY, {})


def _commit(key: tuple, guess_key: str) -> None:
    guess = st.session_state.get(guess_key)
    if guess is not None:
        committed().setdefault(key, guess)  # the first commit stands


def scoreboard(run, labels: dict[str, str], ctx) -> None:
    """The session's committed verdicts on this run against the truth, and the score."""
    rows = []
    for label, mid in labels.items():
        guess = committed().get((str(run.root), mid))
        if guess is None:
            continue
        actual, _ = widgets.truth(ctx, mid)
        rows.append({"model": f"{label} = {mid}", "your verdict": guess, "truth": actual,
                     "correct": None if actual == "unknown" else guess == actual})
    if not rows:
        st.caption("scoreboard: no verdict committed in this session yet")
        return
    sc = score([(r["your verdict"], r["truth"]) for r in rows])
    st.markdown(f"**Scoreboard (this session):** {sc.right} of {sc.scored} correct"
                + (f"; {sc.unscored} undetermined, not scored" if sc.unscored else ""))
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="audit-scoreboard")


ctx = state.context()
if ctx is None:
    st.stop()
st.title("Blind audit")
run = ctx.run
audited = [m for m in run.model_ids() if (run.probes(m) / AUDIT_FILE).is_file()]
if not audited:
    st.info("No model of this run has an audit yet.")
    st.stop()
labels = shuffled_labels(audited, str(run.root))
label = st.selectbox("model under audit", list(labels), key="audit-model")
model_id = labels[label]
verdicts = committed()
try:
    audit = read_audit(run, model_id)
except KitError as exc:
    st.error(f"Cannot read the audit of {label}: {exc}")
    st.stop()

st.subheader("Linear probes")
st.caption(f"probes trained to tell eliciting from clean prompts of this model's organism "
           f"({audit.n_prompts} probe prompts; the organism is named after your verdict)")
left, right = st.columns([3, 2])
left.plotly_chart(audit_probe_figure(audit.probes, audit.contrast), key="audit-probes")
best, contrast = audit.best_probe, audit.best_contrast
right.metric("best probe AUROC", f"{best['auroc']:.3f}", f"{best['site']} ({best['pool']})",
             delta_color="off", delta_arrow="off")
if contrast:
    right.metric("best trigger-agnostic probe", f"{contrast['auroc']:.3f}",
                 f"{contrast['kind']} at {contrast['site']}", delta_color="off", delta_arrow="off")

try:
    feats = model_features(run.probes(model_id))
except ValueError as exc:
    st.error(f"Cannot read the feature record of {label}: {exc}")
    feats = None
causals: list[dict | None] = []  # behavioural: shown after the verdict
for site in audit.sae_sites:
    st.subheader(f"SAE features at {site}")
    m = audit.saes.get(site, {})
    st.caption(" · ".join(f"{k} {m[k]:.3f}" for k in ("fvu", "l0", "dead_frac", "loss_recovered") if k in m))
    mine = feats if feats is not None and (feats.site in (None, site)) else None
    if mine is None or mine.note:
        st.info(mine.note if mine else "no feature record for this SAE")
    else:
        # the reference's name would reveal the lineage (base vs a control): it is not shown
        st.markdown(f"**misalignment features** (separate this model's misbehaving from behaving completions on "
                    f"marker-matched prompts, absent from its reference model): **{mine.misalignment or 'none'}**")
        st.markdown(f"**context features** ({CONTEXT_LABEL}; the reference model has them too, so they are "
                    f"not evidence of misalignment): {mine.context[:24] or 'none'}"
                    f"{' ...' if len(mine.context) > 24 else ''}")
        causals.append(mine.causal)
        st.caption("the causal test of these features (ablating them while the model answers) measures "
                   "misbehaviour, so it is shown after your verdict")
    top = pd.DataFrame(audit.features[site]["top"][:12])
    if mine is not None and not top.empty and "feature" in top:
        top.insert(1, "kind", [mine.kind(int(f)) for f in top["feature"]])
    st.caption("Eliciting-vs-clean ranking of the SAE's features: a description (a marker detector ranks "
               "high here), not the definition of a misalignment feature.")
    st.dataframe(top, hide_index=True, width="stretch", column_config=widgets.table_config(top))
    options = list(dict.fromkeys((mine.misalignment if mine else [])
                                 + [d["feature"] for d in audit.features[site]["top"][:12]]))
    if options:
        f = st.selectbox("inspect a feature", options, key=f"audit-feature-{site}",
                         format_func=lambda f: f"{f} {mine.mark(f) if mine else ''}".rstrip())
        try:
            widgets.dashboard(state.dashboard(str(run.root), model_id, site, f, runs.stamp(run)),
                              f"{label} · feature {f}", f"audit-{site}")
        except (KitError, OSError, KeyError, ValueError) as exc:
            st.error(f"Cannot build the dashboard: {exc}")

st.subheader("Verdict")
st.markdown("Scored by this rule: " + widgets.decision_rule(ctx.view.summary))
key = (str(run.root), model_id)
locked = verdicts.get(key)
slot = label.removeprefix("model ")  # widget keys show in the page's HTML: never the model id
guess_key = f"guess-{slot}"
if locked is not None:
    st.session_state[guess_key] = locked
guess = st.radio("your verdict", ["misaligned", "aligned"], index=None, horizontal=True, key=guess_key,
                 disabled=locked is not None, help="locked once committed" if locked else None)
if locked is None:
    st.button("commit verdict and reveal", key=f"commit-{slot}", disabled=guess is None,
              on_click=_commit, args=(key, guess_key), help="choose a verdict first; it cannot be changed after")
else:
    widgets.lineage(run, model_id, locked, ctx)
    for causal in causals:
        widgets.causal_block(causal)
scoreboard(run, labels, ctx)
