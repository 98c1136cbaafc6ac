"""Test helpers: a scoped loanrisk home, PostgreSQL schemas, stored rows, an in-process API."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loanrisk.store.tables import Application

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def home(path: Path) -> Iterator[Path]:
    """LOANRISK_HOME=path for the block (settings cache cleared on entry and exit)."""
    from loanrisk.config import get_settings

    old = os.environ.get("LOANRISK_HOME")
    os.environ["LOANRISK_HOME"] = str(path)
    get_settings.cache_clear()
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("LOANRISK_HOME", None)
        else:
            os.environ["LOANRISK_HOME"] = old
        get_settings.cache_clear()

def application_row(key_id: uuid.UUID, idem: str | None = None, **over: Any) -> Application:
    """A decided application as the service stores it (binary good/bad model "m" v1)."""
    from loanrisk.store.tables import Application

    cols: dict[str, Any] = dict(
        id=uuid.uuid4(), channel="web", api_key_id=key_id, idempotency_key=idem,
        request_hash="h" * 64, attributes={"income": 1.0}, decision="approve",
        probabilities={"good": 0.9, "bad": 0.1}, risk_score=0.1, risk_tier="low", reasons=[],
        model_name="m", model_version=1, model_sha256="s" * 64)
    return Application(**{**cols, **over})


@contextmanager
def fresh_pg_schema(base: str = PG_BASE, prefix: str = "lr_") -> Iterator[str]:
    """A new PostgreSQL schema on ``base``, dropped afterwards; the URL whose connections use it."""
    from sqlalchemy import create_engine, text

    schema = f"{prefix}{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    with engine.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


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


