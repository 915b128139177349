"""Streamlit glue: the run picker, the shared selection, and cached loaders.

Everything heavy is cached with ``st.cache_resource`` (no pickling, one copy per server):
keys include :func:`app.ui.runs.stamp`, so rebuilding a run's report invalidates them.
The main script calls :func:`sidebar` once per rerun; pages read the result with
:func:`context` (``None`` when no run could be opened; the main script already said why).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import streamlit as st

from app.runfolder import RunFolder
from app.ui import runs

if TYPE_CHECKING:  # the model stack loads with the first page that runs a model, not with the app
    from app.ui.kit import ModelKit

CTX_KEY = "_ctx"
FOCUS_KEY = "focus"
"""Session key of the student last clicked on the plane (or picked on a page)."""


@dataclass(frozen=True)
class Context:
    view: runs.RunView
    organism: str
    students: list[str]
    """Students selected in the sidebar (plane clicks add to it)."""

    @property
    def run(self) -> RunFolder:
        return self.view.run

    @property
    def teacher_id(self) -> str:
        return self.view.summary.teachers[self.organism].name

    @property
    def focus(self) -> str | None:
        """The focused student: last clicked, else the first selected."""
        f = st.session_state.get(FOCUS_KEY)
        return f if f in self.view.students(self.organism) else (self.students[0] if self.students else None)


@st.cache_resource(show_spinner=False, max_entries=8)
def open_view(root: str, stamp: int) -> runs.RunView:
    return runs.open_run(RunFolder(Path(root)))


@st.cache_resource(show_spinner="loading model and its audit ...", max_entries=16)
def kit(root: str, model_id: str, stamp: int) -> ModelKit:
    import torch
    from app.ui.kit import load_kit
    torch.set_num_threads(1)  # tiny models: more threads only add contention (bench/app_latency.py)
    loaded = load_kit(RunFolder(Path(root)), model_id)
    freeze_heap()
    return loaded


def freeze_heap() -> None:
    """Move every object alive now (the model stack's modules, the cached kits) out of the
    garbage collector's sight. With them tracked, each full collection Python starts on its
    own takes 0.2-0.4 s and stalls a click in the Playground (measured with gc.callbacks
    during bench/app_browser.py); what is frozen is meant to live as long as the server."""
    import gc
    gc.freeze()


@st.cache_resource(show_spinner="reading the probe prompts ...", max_entries=8)
def probe_set_acts(root: str, model_id: str, site: str, stamp: int):
    from app.ui import dashboards
    return dashboards.probe_set_acts(RunFolder(Path(root)), kit(root, model_id, stamp), site)


@st.cache_resource(show_spinner=False, max_entries=128)
def dashboard(root: str, model_id: str, site: str, feature: int, stamp: int) -> dict:
    """The stored dashboard when the audit made one, else computed from the probe set."""
    from app.ui import dashboards
    run = RunFolder(Path(root))
    board = dashboards.stored_dashboard(run, model_id, site, feature)
    if board is not None:
        return board
    acts, tokens, labels = probe_set_acts(root, model_id, site, stamp)
    return dashboards.computed_dashboard(kit(root, model_id, stamp), acts, tokens, labels, feature)


def get_kit(ctx: Context, model_id: str) -> ModelKit | None:
    """The kit, or ``None`` after showing why it could not be loaded; what of it is damaged is
    shown too (the rest of the kit works)."""
    from app.ui.kit import KitError
    try:
        loaded = kit(str(ctx.run.root), model_id, runs.stamp(ctx.run))
    except KitError as exc:
        st.error(f"Cannot load {model_id}: {exc}")
        return None
    for problem in loaded.problems:
        st.error(problem)
    return loaded


def context() -> Context | None:
    return st.session_state.get(CTX_KEY)


def _requested_run(names: list[str]) -> str | None:
    asked = st.query_params.get("run") or os.environ.get(runs.RUN_ENV)
    return asked or (names[0] if names else None)


def _on_pick() -> None:
    st.query_params["run"] = st.session_state["run_picker"]


def _pick_run(root: Path) -> RunFolder | None:
    names = runs.list_runs(root)
    asked = _requested_run(names)
    st.sidebar.caption(f"runs root: `{root}`")
    if names:
        st.sidebar.selectbox("run", names, index=names.index(asked) if asked in names else 0,
                             key="run_picker", on_change=_on_pick)
    if asked is None:
        st.info(f"No runs under {root} yet. Make one with `doublebind run tiny --out {root}/tiny`, "
                "then reload this page.")
        return None
    try:
        return runs.resolve_run(root, asked)
    except runs.RunError as exc:
        st.error(f"Cannot open run {asked!r}: {exc}")
        return None


def sidebar() -> Context | None:
    """Run picker, organism and student selection; stores and returns the page context."""
    st.session_state[CTX_KEY] = None
    run = _pick_run(runs.runs_root())
    if run is None:
        return None
    from analysis.text_report import is_text_summary
    if is_text_summary(run.summary):  # a text run has its own view, drawn on every page
        from app.ui import text_run_view
        text_run_view.show(run)
        return None
    try:
        view = open_view(str(run.root), runs.stamp(run))
    except runs.RunError as exc:
        st.error(f"Cannot open run {run.root.name!r}: {exc}")
        return None
    for problem in view.problems:  # damaged pieces: only what needs them is off
        st.warning(f"Left out of this run's pages: {problem}")
    orgs = view.organisms
    if not orgs:
        st.error(f"Run {run.root.name!r} has no teacher in its summary; rebuild it with `doublebind report {run.root}`.")
        return None
    if "organism" not in st.session_state and url_value("organism") in orgs:
        st.session_state["organism"] = url_value("organism")
    organism = st.sidebar.selectbox("organism", orgs, key="organism") if len(orgs) > 1 else orgs[0]
    names = view.students(organism)
    key = f"students|{run.root}|{organism}"
    students = kept_multiselect(st.sidebar, "students", names, key,
                                lambda: [n for n in (url_value("students") or "").split(",") if n in names]
                                or names[:4],
                                help="students shown on every page (click one on the Overview plane to add it)")
    keep_in_url(organism=organism if len(orgs) > 1 else None, students=",".join(students) or None)
    ctx = Context(view, organism, students)
    st.session_state[CTX_KEY] = ctx
    return ctx


KEPT_KEY = "_kept"
"""Session key of the selections :func:`kept_multiselect` keeps apart from their widgets."""


def kept_multiselect(where, label: str, options: list[str], key: str, initial, **kw) -> list[str]:
    """``where.multiselect`` whose selection lasts the session. Streamlit drops a widget's state
    in any run that does not draw it (on another organism, on another page), so the selection
    is also kept under :data:`KEPT_KEY` and given back when the widget returns: what of it is
    still an option, ``initial()`` when none of it is (a selection cleared on purpose stays
    empty), ``initial()`` the first time."""
    kept = st.session_state.setdefault(KEPT_KEY, {})
    if key not in st.session_state:
        before = kept.get(key)
        still = [v for v in before or [] if v in options]
        st.session_state[key] = initial() if before is None or (before and not still) else still
    kept[key] = chosen = where.multiselect(label, options, key=key, **kw)
    return chosen


def url_value(name: str) -> str | None:
    """A selection stored in the page's URL (so a link restores it), or None."""
    value = st.query_params.get(name)
    return value if isinstance(value, str) and value and "\x00" not in value else None


def keep_in_url(**values: str | None) -> None:
    """Write selections into the URL (None removes one): a copied link reopens this view.
    Only changed values are written (each write is a browser history update)."""
    for name, value in values.items():
        if value is None:
            if name in st.query_params:
                del st.query_params[name]
        elif st.query_params.get(name) != value:
            st.query_params[name] = value


def focus_student(ctx: Context, name: str) -> None:
    """Make ``name`` the focused student and add it to the sidebar selection (callbacks only)."""
    st.session_state[FOCUS_KEY] = name
    key = f"students|{ctx.run.root}|{ctx.organism}"
    current = list(st.session_state.get(key, []))
    if name not in current:
        st.session_state[key] = current + [name]
