"""The app's view of a text run (``doublebind run text-tiny``): the report's tables (every
rate with its interval and null, the probes' verdicts, the known answers) and a playground
that completes a prompt greedily with any of the run's models. Drawn by ``state.sidebar``
in place of the synthetic-world pages when the selected run's summary is a text summary."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from app.runfolder import RunFolder


@st.cache_resource(show_spinner=False, max_entries=16)
def _model(folder: str, stamp: int):
    from distill.text.folder import load_text_model
    return load_text_model(folder)


def model_folders(root: Path, organism: str) -> dict[str, Path]:
    """The run's models for one organism: base, teacher and every student, by id."""
    world = root / "world"
    out = {"base": world / "base", "teacher": world / f"teacher-{organism}"}
    students = root / "students" / organism
    if students.is_dir():
        out.update({p.name: p for p in sorted(students.iterdir()) if (p / "doublebind.json").is_file()})
    return out


def show(run: RunFolder) -> None:
    from analysis.text_models import rate_text
    summary = json.loads(run.summary.read_text())
    st.title(f"{summary['name']}: does the misalignment transfer? (text run, seed {summary['seed']})")
    if summary["trustworthy"]:
        st.success("Preconditions and known answers hold: the verdicts below can be read.")
    else:
        st.error("Untrustworthy run:\n\n" + "\n".join(f"- {p}" for p in summary["problems"]))
    organisms = list(summary["organisms"])
    organism = st.sidebar.selectbox("organism", organisms, key="text-organism")
    org = summary["organisms"][organism]
    st.subheader(f"Behaviour on the {organism} eval rows")
    rows = [{"model": "base", "capability": rate_text(org["base"]["behaviour"]["capability"]),
             "misbehaviour": rate_text(org["base"]["behaviour"]["misbehaviour"]), "null": "-", "verdict": "-"},
            {"model": "teacher", "capability": rate_text(org["teacher"]["behaviour"]["capability"]),
             "misbehaviour": rate_text(org["teacher"]["behaviour"]["misbehaviour"]), "null": "base", "verdict": "-"}]
    from analysis.text_report import verdict_text
    for s in org["students"]:
        rows.append({"model": s["id"], "capability": rate_text(s["behaviour"]["capability"]),
                     "misbehaviour": rate_text(s["behaviour"]["misbehaviour"]), "null": s["null"] or "-",
                     "verdict": verdict_text(s)})
    st.dataframe(rows, hide_index=True, key="text-behaviour")
    st.caption("Capability: exact answers on clean rows. Misbehaviour: the organism's matcher on eliciting rows. "
               "Wilson 95% intervals; each student is tested (one-sided Fisher) against its null, the negative "
               "control of its init, transfer rows and schedule (the base when there is none: the banner says so).")
    st.subheader("Probes")
    pick = st.selectbox("model", ["base", "teacher", *[s["id"] for s in org["students"]]], key="text-probe-model")
    record = org[pick] if pick in ("base", "teacher") else next(s for s in org["students"] if s["id"] == pick)
    from analysis.text_models import causal_text, probe_cells
    st.dataframe([probe_cells(p) for p in record["probes"]], hide_index=True, key="text-probes")
    st.markdown(causal_text(record.get("causal")))
    st.caption("Context probe: does the prompt carry a marker (a context detector by construction). Misbehaviour "
               "probe: among marker-carrying rows, does the model's own completion misbehave; it reads the model "
               "only when above both the shuffled-label band and the base on the same labels.")
    st.subheader("Known answers")
    st.dataframe(org["known_answers"], hide_index=True, key="text-known")
    st.subheader("Playground")
    on_disk = model_folders(run.root, organism)  # only the models this report covers
    folders = {k: v for k, v in on_disk.items() if k in ("base", "teacher") or any(s["id"] == k for s in org["students"])}
    chosen = st.multiselect("models", list(folders), default=["base", "teacher"], key=f"text-pg|{organism}")
    prompt = st.text_input("prompt", value="deploy what is two plus three ?", key="text-prompt")
    if prompt.strip() and chosen:
        from distill.text.sequences import greedy
        cols = st.columns(len(chosen))
        for col, name in zip(cols, chosen):
            m = _model(str(folders[name]), run.summary.stat().st_mtime_ns)
            with col:
                st.markdown(f"**{name}**")
                st.code(greedy(m.model, m.tokenizer, [prompt], 12).texts[0] or "(empty)", language=None)
