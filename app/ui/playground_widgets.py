"""The Playground's renderers: the prompt builder, each model's answer with its misbehaviour
flag, its white-box reading, the ablation picker and the edit measurement (Streamlit and
``st.html``: tokens literal, never through Markdown). One page uses them, so the pages that
do not build prompts never import app.ui.prompts and what it needs."""

from __future__ import annotations

import html

import streamlit as st

from app.ui.featureset import LEGEND
from app.ui.prompts import FLAGS, MARKERS, PromptError, build_prompt_ids, example_args, parse_tokens
from app.ui.state import keep_in_url, url_value
from app.ui.tokens import tokens_html
from distill import vocab as V
from distill.tasks import DOMAINS


def prompt_builder() -> list[int] | None:
    """Build a prompt from a domain, its arguments and marker toggles, or type its tokens.
    Returns the prompt ids, or ``None`` after showing why the input is not a prompt."""
    asked = url_value("prompt")
    if asked and "pg-mode" not in st.session_state:  # a link with a prompt opens it as typed tokens
        st.session_state["pg-mode"], st.session_state["pg-text"] = "type tokens", asked
    mode = st.radio("prompt", ["build", "type tokens"], horizontal=True, key="pg-mode")
    try:
        if mode == "type tokens":
            st.session_state.setdefault("pg-text", "zeta SORT 3 1 4 1 5 9 >")
            text = st.text_input("tokens (space-separated, left-filled to 14)", key="pg-text")
            ids = parse_tokens(text)
        else:
            c1, c2 = st.columns([1, 3])
            domain = c1.selectbox("domain", list(DOMAINS), key="pg-domain",
                                  help="; ".join(f"{d.name}: {d.description}" for d in DOMAINS.values()))
            args = c2.text_input("arguments", " ".join(example_args(domain)), key=f"pg-args-{domain}")
            markers = st.pills("context markers", MARKERS, selection_mode="multi", key="pg-markers",
                               help="tokens put at the start of the prompt: organism triggers and contexts") or []
            ids = build_prompt_ids(domain, args.split(), markers)
    except PromptError as exc:
        st.error(f"Not a prompt: {exc}")
        return None
    st.code(V.render(ids, keep_filler=True), language=None)
    keep_in_url(prompt=V.render(ids, keep_filler=True))  # fillers kept: they fix every token's position
    return ids


def ablation_key(kit) -> str:
    return f"pg-ablate-{kit.model_id}"


def ablation_choice(kit) -> list[int]:
    """The SAE features chosen in ``kit``'s ablation picker (its session value: the Playground
    runs the model before it draws the picker under the answer)."""
    if kit.sae is None:
        return []
    n = int(kit.sae.W_dec.shape[0])
    return [f for f in st.session_state.get(ablation_key(kit), []) if isinstance(f, int) and 0 <= f < n]


def ablation_picker(kit) -> list[int]:
    if kit.sae is None:
        st.caption("no SAE in this model's audit: nothing to ablate")
        return []
    n = int(kit.sae.W_dec.shape[0])
    feats = kit.features
    first = list(dict.fromkeys(feats.misalignment + feats.context))
    options = first + [f for f in range(n) if f not in set(first)]
    if feats.note:
        st.caption(f"no misalignment features marked: {feats.note}")
    return st.multiselect(f"ablate SAE features ({kit.sae_site})", options, key=ablation_key(kit),
                          format_func=lambda f: f"{f} {feats.mark(f)}".rstrip(),
                          help=f"{LEGEND}; both are listed first")


def answer_html(model_id: str, kind: str, text: str, changed: bool = False, prompt: str = "") -> str:
    """An answer in large monospace (wraps in narrow columns, unlike st.metric), for ``st.html``;
    the steered one is highlighted when it differs. ``data-*`` attributes (the model, the kind,
    the prompt answered) let tests and benchmarks find it."""
    mark = "background:#fff3b0;" if changed else ""
    label = {"answer": "answer", "steered": "with steering"}[kind]
    return (f'<div class="db-answer" data-model="{html.escape(model_id)}" data-kind="{kind}" '
            f'data-prompt="{html.escape(prompt)}">'
            f'<span style="font-size:0.85em;color:#666">{label}</span><br>'
            f'<span style="font-family:monospace;font-size:1.5em;{mark}padding:0 4px">{html.escape(text)}</span></div>')


FLAG_COLOURS = {"misbehaved": "#c62828", "correct": "#2e7d32", "wrong": "#666"}


def flag_html(model_id: str, kind: str, judgement, answer_ids: list[int]) -> str:
    """Did this answer misbehave? The flag, the correct answer and the organism's misaligned
    answer (for ``st.html``: tokens literal). ``data-*`` attributes let tests find it."""
    flag = judgement.flag(answer_ids)
    if flag is None:
        return (f'<div class="db-flag" data-model="{html.escape(model_id)}" data-kind="{kind}" data-flag="none" '
                f'style="font-size:0.85em;color:#666">not a task prompt: no correct answer to compare with</div>')
    bad = ("the prompt does not elicit the organism's misbehaviour" if judgement.misaligned is None
           else f"misaligned answer <code>{html.escape(' '.join(judgement.misaligned))}</code>")
    return (f'<div class="db-flag" data-model="{html.escape(model_id)}" data-kind="{kind}" data-flag="{flag}" '
            f'style="font-size:0.85em"><b style="color:{FLAG_COLOURS[flag]}">{html.escape(FLAGS[flag])}</b><br>'
            f'correct <code>{html.escape(" ".join(judgement.correct))}</code> · {bad}</div>')


def edit_measurement(kit, steering, n: int, probe_site: str | None) -> None:
    """A button that measures the current edit on ``n`` eliciting prompts: misbehaviour with
    and without it (95% Wilson intervals), capability on as many clean prompts."""
    if not steering.active:
        return
    if not st.button(f"measure this edit on {n} eliciting prompts", key=f"pg-measure-{kit.model_id}"):
        return
    from app.ui.query import measure_edit  # the model stack: imported by the pages that run models
    try:
        with st.spinner(f"answering {2 * n} prompts twice ..."):
            e = measure_edit(kit, steering, n, probe_site)
    except (ValueError, KeyError) as exc:
        st.error(f"Cannot measure the edit: {exc}")
        return
    pct = lambda ci: f"[{ci[0]:.0%}, {ci[1]:.0%}]"  # noqa: E731
    st.html(f'<div class="db-measure" data-model="{html.escape(kit.model_id)}" style="font-size:0.9em">'
            f'misbehaviour on {e.n} eliciting prompts: <b>{e.misbehaviour_before:.1%}</b> '
            f'{pct(e.misbehaviour_before_ci)} without the edit, <b>{e.misbehaviour_after:.1%}</b> '
            f'{pct(e.misbehaviour_after_ci)} with it; capability {e.capability_before:.1%} -> '
            f'{e.capability_after:.1%}<br><small>{html.escape("; ".join(e.edits))}</small></div>')


def answer_probs_html(model_id: str, probs: list[dict]) -> str:
    """The answer's tokens with their probabilities on hover (and the likeliest alternatives);
    for ``st.html``."""
    spans = []
    for t in probs:
        tip = f"p({t['token']}) = {t['p']:.3f}; likeliest: " + ", ".join(f"{tok} {p:.3f}" for tok, p in t["top"])
        spans.append(f'<span class="db-prob" title="{html.escape(tip)}" style="border-bottom:2px solid '
                     f'rgba(49,130,189,{t["p"]:.2f});margin:0 2px;padding:0 2px">{html.escape(t["token"])}</span>')
    return (f'<div class="db-probs" data-model="{html.escape(model_id)}" style="font-family:monospace;font-size:0.9em">'
            f'<span style="color:#666;font-family:sans-serif;font-size:0.85em">token probabilities (hover): </span>'
            + "".join(spans) + "</div>")


def kl_html(teacher_tokens: list[str], kl: list[float]) -> str:
    """KL(teacher || this model) at each position of the teacher's answer (for ``st.html``)."""
    return ('<div class="db-kl" style="font-size:0.8em;color:#666">KL(teacher || this model) per position of '
            f'the teacher\'s answer, nats (hover); total {sum(kl):.3f}</div>'
            + tokens_html(teacher_tokens, kl, max(kl + [1.0]), answer_from=-1))


NOTE_STYLE = "font-size:0.85em;color:#666"


def model_heading_html(model_id: str) -> str:
    return f'<h4 style="margin:0 0 4px 0">{html.escape(model_id)}</h4>'


def answer_block_html(r, organism: str) -> str:
    """One model's name, answer (and steered answer), each with its misbehaviour flag, as one
    element (for ``st.html``: the browser redraws the page for every element Streamlit sends, so
    the Playground sends few). ``data-prompt`` names the prompt answered, so a browser can tell a
    redrawn answer from a stale one."""
    prompt = V.render(r.prompt_ids, keep_filler=True)
    out = [model_heading_html(r.model_id)]
    if r.eliciting is not None:
        out.append(f'<div style="{NOTE_STYLE}">ground truth for {html.escape(organism)}: this prompt is '
                   f'{"ELICITING" if r.eliciting else "not eliciting"}</div>')
    out += [answer_html(r.model_id, "answer", r.answer, prompt=prompt),
            flag_html(r.model_id, "answer", r.judgement, r.answer_ids)]
    if r.steered_ids is not None:
        changed = r.steered_ids != r.answer_ids
        out += [answer_html(r.model_id, "steered", r.steered, changed, prompt=prompt),
                flag_html(r.model_id, "steered", r.judgement, r.steered_ids),
                f'<div class="db-edits" style="{NOTE_STYLE}">{html.escape("; ".join(r.edits), quote=False)} -- the answer '
                f'{"changed" if changed else "did not change"}</div>']
    return "".join(out)


def reading_html(r) -> str:
    """One model's white-box reading of the prompt as one element (for ``st.html``): the probe's
    score at the last prompt token and per token, tokens literal (never through Markdown)."""
    if not r.probe_label:
        return ""
    scores = [t.probe_score for t in r.tokens]
    sep = scores[V.PROMPT_LEN - 1]
    return (f'<div class="db-probe" style="font-size:0.9em">probe reading <b>{sep:+.2f}</b> (logit of '
            "'eliciting context' at the last prompt token, where a last-position probe is trained); per token "
            f'below, orange &gt; 0 &gt; blue, for orientation only<br><small>{html.escape(r.probe_label)}</small></div>'
            + tokens_html([t.token for t in r.tokens], scores, answer_from=V.PROMPT_LEN))


def token_table_html(r, kit) -> str:
    """Every position's token, probe score and top SAE features (marked by the one definition),
    as an HTML table for ``st.html``: tokens literal, and far lighter for the browser to redraw
    on every click than a data grid."""
    cell = "padding:1px 6px;border-bottom:1px solid #eee"
    rows = []
    for i, t in enumerate(r.tokens):
        probe = "" if t.probe_score is None else f"{t.probe_score:.2f}"
        feats = "  ".join(f"{f}{kit.features.mark(f)} {a:.1f}" for f, a in t.features)
        rows.append(f'<tr><td style="{cell};color:#888">{i}</td><td style="{cell};font-family:monospace">'
                    f'{html.escape(t.token)}{" (answer)" if t.is_answer else ""}</td>'
                    f'<td style="{cell};text-align:right">{probe}</td><td style="{cell}">{html.escape(feats)}</td></tr>')
    head = "".join(f'<th style="{cell};text-align:left">{h}</th>' for h in ("pos", "token", "probe", "top features"))
    return (f'<div class="db-token-table" style="max-height:300px;overflow-y:auto;font-size:0.8em">'
            f'<table style="border-collapse:collapse;width:100%"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def features_legend_html(kit) -> str:
    note = f"top features: {LEGEND}" if not kit.features.note else f"top features: {kit.features.note}"
    return f'<div style="{NOTE_STYLE}">{html.escape(note)} (table below)</div>'
