"""Service fixtures: hand-made model versions, both stores (SQLite and PostgreSQL), API clients."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from model_factory import build_model_dir  # noqa: E402

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_schema_url(schema: str) -> str:
    """A URL whose connections use their own PostgreSQL schema (runs never collide)."""
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


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
    from sqlalchemy import create_engine, text

    schema = f"lr_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_BASE)
    with engine.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    yield pg_schema_url(schema)
    with engine.begin() as c:
        c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL: real SQLite file, then real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@dataclass
class Api:
    """A TestClient on a service with an admin key and a web key."""

    client: object
    admin: dict[str, str]
    web: dict[str, str]
    other: dict[str, str]
    store: object


def make_api(db_url: str, model_dir: Path, **settings_overrides: object) -> Iterator[Api]:
    """Start an app (lifespan included) and yield clients with keys; closes everything."""
    from fastapi.testclient import TestClient

    from loanrisk.api.app import create_app
    from loanrisk.config import get_settings
    from loanrisk.store import Store

    settings = get_settings().model_copy(update=settings_overrides)
    store = Store(db_url)
    admin, _ = store.create_key(channel="call_center", admin=True)
    web, _ = store.create_key(channel="web")
    other, _ = store.create_key(channel="mobile")
    app = create_app(settings, model_dir=model_dir, store=store)
    with TestClient(app) as client:
        import time

        for _ in range(200):  # the model loads in the background
            if client.get("/ready").status_code == 200:
                break
            time.sleep(0.02)
        yield Api(client, {"Authorization": f"Bearer {admin}"},
                  {"Authorization": f"Bearer {web}"}, {"Authorization": f"Bearer {other}"}, store)
    store.close()


@pytest.fixture
def api(db_url: str, model_dir: Path) -> Iterator[Api]:
    """The service on the binary fixture model, over each store."""
    yield from make_api(db_url, model_dir)
