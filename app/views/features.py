"""Features: the teacher's misalignment features matched 1:1 into each student (the calibrated
feature transfer), and a feature's dashboard side by side for the teacher and its partner.

Every id here is the one definition's (probes.diffing, SAE seed 0): the rows are the teacher's
misalignment features as its feature record and the audit page list them."""

import streamlit as st

from app.ui import runs, state, widgets
from app.ui.featureset import CONTEXT_LABEL, model_features
from app.ui.figures import TRANSFER_STATES, feature_transfer_figure, transfer_cell
from app.ui.kit import KitError

ctx = state.context()
if ctx is None:
    st.stop()
st.title("Feature transfer")
results = ctx.view.results
transfers = {s.info.name: s.features for s in results.students
             if s.info.organism == ctx.organism and s.features and s.features.teacher_features}
shown = [n for n in ctx.students if n in transfers]
try:
    t_feats = model_features(ctx.run.probes(ctx.teacher_id))
except ValueError as exc:
    st.error(str(exc))
    st.stop()
if t_feats.context:
    st.caption(f"The teacher's context features ({CONTEXT_LABEL}; its base has them too, so they are not "
               f"misalignment): {', '.join(f'T{f}' for f in t_feats.context[:16])}"
               f"{' ...' if len(t_feats.context) > 16 else ''}")
if not shown:
    why = t_feats.note or "the teacher has no misalignment features against its base"
    st.info(f"None of the selected students has a calibrated feature transfer to show ({why}).")
    st.stop()
st.caption("Rows: the teacher's misalignment SAE features (diffed against its base). Cell: the 1:1 "
           "(Hungarian) partner among the student's SAE features; ✓ when it transferred (correlated and itself "
           "a misalignment feature of the student). Column: features transferred, with its null.")
st.plotly_chart(feature_transfer_figure(results, ctx.organism, shown, ctx.view.summary), key="feature-map")

c0, c1, c2 = st.columns([1, 1, 1])
direction = c0.radio("direction", ["teacher → student", "student → teacher"], horizontal=True, key="feat-direction",
                     help="teacher → student: each teacher misalignment feature and its 1:1 partner in the student; "
                          "student → teacher: each student misalignment feature and the teacher feature it partners")
focus = ctx.focus if ctx.focus in shown else shown[0]
if "feat-student" not in st.session_state and state.url_value("student") in shown:
    focus = state.url_value("student")  # a link restores its student and feature
student = c1.selectbox("student", shown, index=shown.index(focus), key="feat-student")
ft = transfers[student]
backward = direction == "student → teacher"
from_student = {s_: t for t, s_ in ft.partners.items()}  # Hungarian: one-to-one, so invertible
student_only = [f for f in ft.student_features if f not in from_student]
if backward and not ft.student_features:
    st.info(f"{student} has no misalignment features of its own (against {ft.reference or 'its reference'}).")
    st.stop()
ids = ft.student_features if backward else ft.teacher_features
asked = state.url_value("feature")
first = (ids.index(int(asked)) if "feat-feature" not in st.session_state and asked
         and asked.isdigit() and int(asked) in ids else 0)
picked = c2.selectbox("student feature (S id)" if backward else "teacher feature (T id)", ids, index=first,
                      key="feat-feature")
state.keep_in_url(student=student, feature=str(picked))
if backward:
    feature = from_student.get(picked)
    partner, status = picked, None if feature is None else transfer_cell(ft, feature)[1]
else:
    feature = picked
    partner, status = transfer_cell(ft, feature)
if student_only:
    st.caption(f"Student-only misalignment latents of {student} (no teacher misalignment feature has them as its "
               f"1:1 partner): {', '.join(f'S{f}' for f in student_only[:24])}{' ...' if len(student_only) > 24 else ''}")

m = st.columns(4)
m[0].metric("features transferred", "n/a" if ft.score is None else f"{ft.score:.0%}",
            "n/a" if ft.ci is None else f"[{ft.ci[0]:.0%}, {ft.ci[1]:.0%}]", delta_color="off", delta_arrow="off",
            help="mean over SAE seeds; interval over SAE seeds x pair bootstrap")
m[1].metric("null", "n/a" if ft.null is None else f"{ft.null:.0%}", ft.null_model or "not measured",
            delta_color="off", delta_arrow="off",
            help="the same score for a model of the student's init that never saw the misalignment")
if backward:
    m[2].metric("teacher partner", "none: student-only" if feature is None else f"T{feature}",
                "transferred" if status == 2 else "" if feature is None else TRANSFER_STATES[1],
                delta_color="inverse" if status == 2 else "off", delta_arrow="off")
else:
    m[2].metric("1:1 partner", "none" if partner is None else f"S{partner}", TRANSFER_STATES[status],
                delta_color="inverse" if status == 2 else "off", delta_arrow="off")
m[3].metric("student misalignment features", f"{len(ft.student_features)}",
            f"{ft.n_context_features} context features", delta_color="off", delta_arrow="off",
            help=f"diffed against {ft.reference or 'its reference'}; context features ({CONTEXT_LABEL}) "
                 "are not misalignment")
xc = ctx.view.record(student).crosscoder
if xc is not None:
    st.caption(f"Crosscoder of teacher and {student} ({xc.n_live} live latents): "
               f"{xc.teacher_only:.0%} teacher-only, {xc.shared:.0%} shared, {xc.student_only:.0%} student-only; "
               f"latents selective for eliciting prompts (may read the marker): "
               f"{xc.misalignment['teacher-only']} teacher-only, "
               f"{xc.misalignment['shared']} shared, {xc.misalignment['student-only']} student-only.")

if not backward and t_feats.causal is not None and feature in t_feats.misalignment:
    st.caption(f"T{feature} is one of the teacher's {len(t_feats.misalignment)} misalignment features; "
               "their causal test ablates them all at once (a per-feature effect is not measured):")
    widgets.causal_block(t_feats.causal)

root, stamp = str(ctx.run.root), runs.stamp(ctx.run)
t_kit, s_kit = state.get_kit(ctx, ctx.teacher_id), state.get_kit(ctx, student)
t_site = t_feats.site or (t_kit.sae_site if t_kit else None)
left, right = st.columns(2)
try:
    with left:
        if t_site is None:
            st.info("the teacher has no SAE to show")
        elif feature is None:
            st.info(f"no teacher misalignment feature has S{partner} as its partner: a student-only latent")
        else:
            widgets.dashboard(state.dashboard(root, ctx.teacher_id, t_site, feature, stamp),
                              f"teacher {ctx.teacher_id} · feature T{feature} at {t_site}", "teacher")
    with right:
        if partner is None or s_kit is None or s_kit.sae_site is None:
            st.info("no partner feature to show")
        else:
            widgets.dashboard(state.dashboard(root, student, s_kit.sae_site, partner, stamp),
                              f"student {student} · feature S{partner} at {s_kit.sae_site}", "student")
except (OSError, KeyError, ValueError, KitError) as exc:
    st.error(f"Cannot build the dashboard: {exc}")
