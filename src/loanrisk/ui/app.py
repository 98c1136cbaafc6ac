"""The loanrisk Streamlit app: `loanrisk ui` runs `streamlit run` on this file.

Three pages (``pages/``): Decide (underwriters), Models (data scientists), Applications (the
store and drift). The sidebar's model picker is shared by all of them.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from loanrisk.ui.common import sidebar_picker

PAGES = Path(__file__).parent / "pages"


def main() -> None:
    """Configure the page, draw the sidebar picker and run the selected page."""
    st.set_page_config(page_title="loanrisk", page_icon=":material/account_balance:",
                       layout="wide")
    nav = st.navigation([
        st.Page(PAGES / "decide.py", title="Decide", icon=":material/gavel:", default=True),
        st.Page(PAGES / "models.py", title="Models", icon=":material/model_training:"),
        st.Page(PAGES / "applications.py", title="Applications", icon=":material/list_alt:"),
    ])
    sidebar_picker()
    nav.run()


if __name__ == "__main__":
    main()
