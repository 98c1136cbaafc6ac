"""The loanrisk Streamlit app: `loanrisk ui` runs `streamlit run` on this file.

Four pages (``pages/``): Decide (underwriters), Models (data scientists), Applications (the
store and drift), Watch (live performance, challenger, fairness, replay). The sidebar's model
picker is shared by all of them.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from loanrisk.ui.common import sidebar_picker

PAGES = Path(__file__).parent / "pages"


def main() -> None:
    """Configure the page, draw the sidebar picker and run the selected page."""
    from loanrisk.config import get_settings

    if get_settings().log_format == "json":  # loanrisk's log lines as JSON, as serve writes them
        from loanrisk.api.middleware import configure_service_logging

        configure_service_logging(fmt="json")
    st.set_page_config(page_title="loanrisk", page_icon=":material/account_balance:",
                       layout="wide")
    nav = st.navigation([
        st.Page(PAGES / "decide.py", title="Decide", icon=":material/gavel:", default=True),
        st.Page(PAGES / "models.py", title="Models", icon=":material/model_training:"),
        st.Page(PAGES / "applications.py", title="Applications", icon=":material/list_alt:"),
        st.Page(PAGES / "watch.py", title="Watch", icon=":material/monitoring:"),
    ])
    sidebar_picker()
    nav.run()


if __name__ == "__main__":
    main()
