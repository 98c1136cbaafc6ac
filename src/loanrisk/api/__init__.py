"""The decision service's HTTP API (FastAPI). Build it with :func:`loanrisk.api.app.create_app`."""
