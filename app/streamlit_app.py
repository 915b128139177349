"""doublebind's Streamlit app: ``doublebind app [RUN_DIR]`` starts it.

The sidebar picks a run under the runs root (``DOUBLEBIND_RUNS_ROOT``), its organism and
the students to show; the five pages read that selection (see app/ui/state.py).
"""

import threading

import streamlit as st

from app.ui import state

st.set_page_config(page_title="doublebind", layout="wide", initial_sidebar_state="expanded")

# No page icons: Streamlit fetches Material icons for them from fonts.gstatic.com (not offline).
PAGES = [
    st.Page("views/overview.py", title="Overview", default=True),
    st.Page("views/probes.py", title="Probes"),
    st.Page("views/features.py", title="Features"),
    st.Page("views/playground.py", title="Playground"),
    st.Page("views/audit.py", title="Audit"),
]


@st.cache_resource(show_spinner=False)
def _warm_model_stack() -> bool:
    """Once per server, after the first page: import the model stack (transformer-lens, sae-lens,
    nnsight; several seconds) in the background, so the first page is not kept waiting for it
    and the pages that run models find it loaded."""
    def load() -> None:
        import app.ui.dashboards  # noqa: F401
        import app.ui.query  # noqa: F401
        import probes.steer  # noqa: F401
        state.freeze_heap()
    threading.Thread(target=load, name="warm-model-stack", daemon=True).start()
    return True


page = st.navigation(PAGES)
state.sidebar()
page.run()
_warm_model_stack()
