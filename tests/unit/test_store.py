"""The store on real SQLite and real PostgreSQL: migrations, keys, idempotency, transactions."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import application_row as _app  # noqa: E402

from loanrisk.store import DuplicateApplication, Store, StoreError, migrate  # noqa: E402


def test_migrations_are_idempotent(store: Store) -> None:
    migrate(store.url)  # second upgrade: nothing to do
    tables = set(inspect(store.engine).get_table_names())
    assert {"applications", "outcomes", "api_keys", "alembic_version"} <= tables
    uniques = inspect(store.engine).get_unique_constraints("applications")
    assert any(set(u["column_names"]) == {"api_key_id", "idempotency_key"} for u in uniques)


def test_keys_expire_and_older_stores_gain_the_column(store: Store) -> None:
    from datetime import UTC, datetime, timedelta

    from alembic import command
    from alembic.config import Config

    from loanrisk.store import MIGRATIONS, normalise_url

    now = datetime.now(UTC)
    later, _ = store.create_key(channel="web", expires_at=now + timedelta(days=30))
    gone, row = store.create_key(channel="web", expires_at=now - timedelta(seconds=1))
    forever, _ = store.create_key(channel="mail")
    assert store.key_for_token(later) is not None and store.key_for_token(forever) is not None
    assert store.key_for_token(gone) is None and row.expired()
    states = {k.id: k.expired() for k in store.list_keys()}  # read back from the database
    assert states[row.id] is True and sum(states.values()) == 1

    # a store made before expiry existed: downgrade to 0002, then open it as the service would
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(store.url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.downgrade(cfg, "0002_challenger")
    assert "expires_at" not in {c["name"] for c in inspect(store.engine).get_columns("api_keys")}
    again = Store(store.url)
    try:
        assert "expires_at" in {c["name"] for c in inspect(again.engine).get_columns("api_keys")}
        assert again.key_for_token(forever) is not None  # old keys never expire
        assert again.key_for_token(later) is not None  # (its expiry went with the column)
    finally:
        again.close()


def test_keys_hashed_list_revoke(store: Store) -> None:
    token, row = store.create_key(channel="chatbot", admin=True)
    assert token.startswith("lr_") and len(token) > 40
    assert row.hashed_key != token and token not in row.hashed_key
    info = store.key_for_token(token)
    assert info is not None and info.admin and info.channel == "chatbot"
    assert store.key_for_token("lr_wrong") is None
    assert [k.id for k in store.list_keys()] == [row.id]
    store.revoke_key(str(row.id)[:8])
    assert store.key_for_token(token) is None
    with pytest.raises(StoreError, match="match"):
        store.revoke_key("zzzz")


def test_idempotency_unique_and_outcomes(store: Store) -> None:
    _t, key = store.create_key(channel="web")
    first = store.insert_application(_app(key.id, "k1"))
    with pytest.raises(DuplicateApplication):
        store.insert_application(_app(key.id, "k1"))
    store.insert_application(_app(key.id))  # no idempotency key: never a duplicate
    store.insert_application(_app(key.id))
    found = store.find_idempotent(key.id, "k1")
    assert found is not None and found.id == first.id
    assert found.probabilities == {"good": 0.9, "bad": 0.1}
    assert store.count_applications() == 3
    store.add_outcome(first.id, outcome="good", source="servicing", api_key_id=key.id)
    assert [o.outcome for o in store.outcomes_of(first.id)] == ["good"]


def test_failed_transaction_stores_nothing(store: Store) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        store.insert_application(_app(uuid.uuid4()))  # unknown API key: foreign key fails
    assert store.count_applications() == 0


def test_sqlite_is_wal_and_full_sync(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with s.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    s.close()


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="use sqlite"):
        Store("mysql://x/y", upgrade=False)
