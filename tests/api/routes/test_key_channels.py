"""Issue 14, finding 7: a key's channels are authoritative (SQLite and PostgreSQL).

A body may name only a channel its API key was created for; no channel means the key's default
(the first). Admin keys are bound the same way. Keys stored before migration 0004 keep working
with their one channel.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from helpers import make_api
from model_factory import BAD, GOOD


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_body_cannot_name_a_channel_its_key_was_not_created_for(api) -> None:
    c = api.client
    for body in ({**GOOD, "channel": "mail"}, {**BAD, "channel": "mobile", "applicant_id": "a"}):
        r = c.post("/v1/applications", json=body,
                   headers={**api.web, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 403, r.text
        [err] = r.json()["detail"]
        assert err["field"] == "channel" and err["loc"] == ["body", "channel"]
        assert err["type"] == "channel_not_allowed" and "web" in err["msg"]
        assert body["channel"] not in r.text  # the refused value is never echoed
    assert api.store.count_applications() == 0  # nothing stored
    # admin keys are bound to their channels too (the admin fixture key is call_center)
    r = c.post("/v1/applications", json={**GOOD, "channel": "web"}, headers=api.admin)
    assert r.status_code == 403 and r.json()["detail"][0]["field"] == "channel"
    assert api.store.count_applications() == 0
    # /v1/score applies the same rule, naming the batch item
    r = c.post("/v1/score", json=[GOOD, {**BAD, "channel": "chatbot"}], headers=api.web)
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "1", "channel"]
    assert "chatbot" not in r.text
    assert c.post("/v1/score", json=[GOOD, {**BAD, "channel": "web"}],
                  headers=api.web).status_code == 200
    # the key's own channel, named or not, is fine
    named = c.post("/v1/applications", json={**GOOD, "channel": "web"}, headers=api.web)
    assert named.status_code == 201 and named.json()["channel"] == "web"
    assert api.store.count_applications() == 1


def test_a_key_allowed_several_channels_may_post_any_of_them(api) -> None:
    token, row = api.store.create_key(channel=["mobile", "web", "mobile"])
    assert (row.channel, row.channels) == ("mobile", "mobile,web")
    h, c = _bearer(token), api.client
    default = c.post("/v1/applications", json=GOOD, headers=h)
    assert default.status_code == 201 and default.json()["channel"] == "mobile"
    for channel in ("web", "mobile"):
        r = c.post("/v1/applications", json={**BAD, "channel": channel}, headers=h)
        assert r.status_code == 201 and r.json()["channel"] == channel
    r = c.post("/v1/applications", json={**BAD, "channel": "call_center"}, headers=h)
    assert r.status_code == 403 and "mobile, web" in r.json()["detail"][0]["msg"]
    rows = api.store.list_applications(api_key_id=row.id, limit=10)
    assert sorted(r.channel for r in rows) == ["mobile", "mobile", "web"]


def test_a_key_stored_before_migration_0004_keeps_its_channel(db_url: str,
                                                              model_dir: Path) -> None:
    """A 0003 database (keys with one channel, no allowed list) upgrades on open: the key
    authenticates, its channel is its default and its only allowed one."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from loanrisk.store import KEY_PREFIX, MIGRATIONS, hash_key, head_revision, normalise_url

    url = normalise_url(db_url)
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "0003_key_expiry")
    token = KEY_PREFIX + uuid.uuid4().hex
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (id, hashed_key, prefix, channel, admin, "
                          "created_at, revoked) VALUES (:id, :h, :p, 'mobile', false, "
                          "CURRENT_TIMESTAMP, false)"),
                     {"id": uuid.uuid4().hex if url.startswith("sqlite") else uuid.uuid4(),
                      "h": hash_key(token), "p": token[:8]})
    engine.dispose()

    gen = make_api(db_url, model_dir)  # opens the Store: migrates to head
    api = next(gen)
    try:
        assert api.store._revision() == head_revision()  # 0004_key_channels and later
        info = api.store.key_for_token(token)
        assert info is not None and info.channel == "mobile" and info.channels == ("mobile",)
        c, h = api.client, _bearer(token)
        r = c.post("/v1/applications", json=GOOD, headers=h)
        assert r.status_code == 201 and r.json()["channel"] == "mobile"
        assert c.post("/v1/applications", json={**GOOD, "channel": "web"},
                      headers=h).status_code == 403
        assert api.store.count_applications() == 1
    finally:
        gen.close()


def test_keys_create_takes_several_channels(fresh_home: Path) -> None:
    """`keys create --channel web --channel mobile` or a comma list; `keys list` shows them."""
    from typer.testing import CliRunner

    from loanrisk.cli import app
    from loanrisk.config import get_settings
    from loanrisk.store import Store

    runner = CliRunner()
    res = runner.invoke(app, ["keys", "create", "--channel", "web", "--channel", "mobile"])
    assert res.exit_code == 0 and "web (default), mobile" in res.output, res.output
    first = res.stdout.strip().splitlines()[-1]
    res = runner.invoke(app, ["keys", "create", "--channel", "mail, call_center"])
    assert res.exit_code == 0, res.output
    second = res.stdout.strip().splitlines()[-1]
    res = runner.invoke(app, ["keys", "create", "--channel", "web,fax"])
    assert res.exit_code != 0 and "--channel 'fax'" in res.output
    res = runner.invoke(app, ["keys", "list"], env={"COLUMNS": "200"})
    assert "web, mobile" in res.output and "mail, call_center" in res.output, res.output
    store = Store(get_settings().resolved_database_url)
    try:
        a, b = store.key_for_token(first), store.key_for_token(second)
        assert a is not None and (a.channel, a.channels) == ("web", ("web", "mobile"))
        assert b is not None and (b.channel, b.channels) == ("mail", ("mail", "call_center"))
    finally:
        store.close()
