"""Opening a store: database URLs, engines (SQLite WAL with synchronous=FULL; PostgreSQL with
psycopg 3, pre-ping and a connect timeout; SQL parameters never in error messages) and the
Alembic migrations that create and upgrade the tables."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

from loanrisk.errors import LoanriskError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class StoreError(LoanriskError):
    """The store cannot do what was asked (bad URL, unknown key...)."""


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` URLs use psycopg 3; others are kept."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if url.startswith("sqlite") and path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, synchronous=FULL, a busy timeout and foreign keys.

    ``hide_parameters``: a database error's message never carries the statement's parameters
    (applicant ids, references, attributes), wherever it is logged or shown.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        sqlite_dir(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=8, max_overflow=16, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql"):
        # a database that stops answering (dropped packets) fails a connection in 10 s instead
        # of hanging requests: the service answers 503 and retries on the next request
        return create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True,
                             hide_parameters=True, connect_args={"connect_timeout": 10})
    raise StoreError(f"database URL {url.split(':', 1)[0]!r}: use sqlite:///PATH or "
                     "postgresql://HOST/DB")


def head_revision() -> str | None:
    """The newest revision in migrations/versions (the one no other revision revises)."""
    import re

    revs: dict[str, str | None] = {}
    for f in (MIGRATIONS / "versions").glob("*.py"):
        text = f.read_text()
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M)
        down = re.search(r'^down_revision\s*=\s*"([^"]+)"', text, re.M)
        if rev:
            revs[rev.group(1)] = down.group(1) if down else None
    heads = set(revs) - {d for d in revs.values() if d}
    return heads.pop() if len(heads) == 1 else None


def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")
