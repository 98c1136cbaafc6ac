"""Service fixtures: hand-made model versions, both stores (SQLite and PostgreSQL), API clients."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import Api, fresh_pg_schema, make_api  # noqa: E402
from model_factory import build_model_dir  # noqa: E402


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A binary (good/bad) model version directory."""
    return build_model_dir(tmp_path_factory.mktemp("model") / "v")


@pytest.fixture(scope="session")
def grades_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A multiclass (A/B/C) model version directory."""
    return build_model_dir(tmp_path_factory.mktemp("grades") / "v", name="fixture-grades",
                           task="multiclass")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test, dropped afterwards."""
    with fresh_pg_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL: real SQLite file, then real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def api(db_url: str, model_dir: Path) -> Iterator[Api]:
    """The service on the binary fixture model, over each store."""
    yield from make_api(db_url, model_dir)
