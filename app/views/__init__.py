"""The app's pages, one script per page, run by ``st.navigation`` from app/streamlit_app.py.

Not named ``pages/``: next to a main script that name switches Streamlit to its older
folder-based navigation, which would run a page without the main script's sidebar."""
