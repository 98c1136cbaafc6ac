"""The Streamlit app (`loanrisk ui`): Decide, Models and Applications pages.

``data`` and ``forms`` hold the logic (plain functions, testable without Streamlit); ``common``
holds the shared Streamlit pieces; ``app.py`` and ``pages/*.py`` are the Streamlit scripts.
"""
