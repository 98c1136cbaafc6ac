"""Alembic migrations of the application store (run by ``loanrisk.store.migrate``)."""
