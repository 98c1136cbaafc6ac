"""Fixtures shared by the unit tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import fresh_pg_schema  # noqa: E402

from loanrisk.store import Store  # noqa: E402


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new, migrated store: real SQLite, then real PostgreSQL (a schema of its own)."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'sub' / 'store.db'}")
        yield s
        s.close()
        return
    with fresh_pg_schema() as url:
        s = Store(url)
        yield s
        s.close()
