"""The Streamlit app's building blocks.

Streamlit-free modules (``runs``, ``kit``, ``query``, ``dashboards``, ``figures``) hold
the logic and are unit-tested and benchmarked directly; ``state`` and ``widgets`` are the
only ones that import streamlit (caching, the sidebar, shared renderers). The page scripts
live in ``app/pages/`` and the entry point is ``app/streamlit_app.py``.
"""
