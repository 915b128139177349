"""doublebind's Streamlit app: ``doublebind app [RUN_DIR]`` starts it.

The sidebar picks a run under the runs root (``DOUBLEBIND_RUNS_ROOT``), its organism and
the students to show; the five pages read that selection (see app/ui/state.py).
"""

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

page = st.navigation(PAGES)
state.sidebar()
page.run()
