"""Streamlit page scripts (run by ``st.navigation`` in ``loanrisk/ui/app.py``)."""
