"""Playground: build a prompt, run the teacher and students side by side, and see whether each
misbehaved (the correct answer and the organism's misaligned answer beside every model's);
read them white-box (probe score and top SAE features per token), steer, and measure an edit
on many eliciting prompts.

The model selection is kept per run and organism for the session (state.kept_multiselect) and
is drawn before the prompt, so switching organism, visiting another page or typing a bad
prompt never loses it."""

import streamlit as st

from app.ui import playground_widgets as pw
from app.ui import state
from app.ui.query import (Steering, answer_logprobs, answer_prompt, greedy_answer, position_kl, read_tokens,
                          token_probs)
from distill import vocab as V

ctx = state.context()
if ctx is None:
    st.stop()
st.title("Playground")

models = [ctx.teacher_id] + ctx.view.students(ctx.organism)
default = [ctx.teacher_id] + ([ctx.focus] if ctx.focus else [])
models_key = f"pg-models|{ctx.run.root}|{ctx.organism}"  # one selection per run and organism
chosen = state.kept_multiselect(st, "models", models, models_key,  # a link restores its models
                                lambda: [m for m in (state.url_value("models") or "").split(",") if m in models]
                                or default)
state.keep_in_url(models=",".join(chosen) or None)
if not chosen:
    st.info("Choose one or more models above.")
with st.expander("Probe and steering", expanded=False):
    teacher = state.get_kit(ctx, ctx.teacher_id)
    sites = teacher.probe_sites if teacher is not None else []
    site = st.selectbox("probe site (last-position probe)", ["best"] + sites, key="pg-site",
                        help="'best': each model's best last-position probe")
    coef = st.slider("subtract the probe direction at the probe's site (x the prompt's mean residual norm there)",
                     0.0, 2.0, 0.0, 0.05, key="pg-coef")
    st.caption("Feature ablation is chosen per model below (each model has its own SAE).")
    n_measure = st.number_input("prompts for 'measure this edit'", 16, 1024, 128, 16, key="pg-n-measure",
                                help="eliciting prompts of the organism (and as many clean ones for capability)")

@st.fragment
def prompt_and_answers(ctx, chosen: list[str], teacher, site: str, coef: float, n_measure: int) -> None:
    """The prompt builder and every model's answer and reading: a fragment, so a change of the
    prompt reruns only this part of the page (the browser redraws less)."""
    prompt_ids = pw.prompt_builder()
    if prompt_ids is None or not chosen:
        return
    # Every model's answer is drawn before any model's details, each model's in one element: the
    # browser redraws the page for every element Streamlit sends, so the answers show first after a
    # click and the readings fill in below them. The ablation picker under an answer is drawn after
    # it, from the value it holds in the session.
    columns = dict(zip(chosen, st.columns(max(len(chosen), 1))))
    kits, readings, asked = {}, {}, {}
    for model_id, column in columns.items():
        with column:
            kit = kits[model_id] = state.get_kit(ctx, model_id)
            if kit is None:
                st.html(pw.model_heading_html(model_id))
                continue
            probe_site = None if site == "best" or site not in kit.probe_sites else site
            steering = Steering(coef, tuple(pw.ablation_choice(kit)))
            asked[model_id] = steering, probe_site
            r = readings[model_id] = answer_prompt(kit, prompt_ids, steering, probe_site)
            st.html(pw.answer_block_html(r, kit.organism))
            pw.ablation_picker(kit)
    teacher_answer = teacher_lp = None
    if teacher is not None:  # the reference every student's per-position KL is taken against
        teacher_answer = (readings[ctx.teacher_id].answer_ids if ctx.teacher_id in readings
                          else greedy_answer(teacher, prompt_ids))
        teacher_lp = answer_logprobs(teacher, prompt_ids, teacher_answer)
    for model_id, r in readings.items():
        kit = kits[model_id]
        r = read_tokens(kit, r, asked[model_id][1])
        is_teacher = model_id == ctx.teacher_id and teacher_lp is not None  # its answer's log-probs are known
        lp = teacher_lp if is_teacher else answer_logprobs(kit, prompt_ids, r.answer_ids)
        parts = [pw.reading_html(r), pw.answer_probs_html(model_id, token_probs(lp, r.answer_ids))]
        if teacher_lp is not None and not is_teacher:
            same = r.answer_ids == teacher_answer  # then its log-probs on the teacher's answer are lp
            kl = position_kl(teacher_lp, lp if same else answer_logprobs(kit, prompt_ids, teacher_answer))
            parts.append(pw.kl_html([V.TOKENS[t] for t in teacher_answer], kl))
        parts += [pw.features_legend_html(kit), pw.token_table_html(r, kit)]
        with columns[model_id]:  # below its answer and picker
            st.html("".join(parts))
            steering, probe_site = asked[model_id]
            pw.edit_measurement(kit, steering, int(n_measure), probe_site)


prompt_and_answers(ctx, chosen, teacher, site, coef, int(n_measure))
