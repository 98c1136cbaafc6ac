"""The access audit (issue 16): each audited action leaves exactly one row, the hash chain
catches an edited or deleted row, a purge keeps it verifiable; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from model_factory import GOOD
from sqlalchemy import text
from typer.testing import CliRunner

from loanrisk.store import Store
from loanrisk.store.audit import entries, purge, verify

runner = CliRunner()


def _rows(store: Store, action: str) -> list[Any]:
    return entries(store.engine, action=action, limit=1000)


def _one(store: Store, action: str, **expect: Any) -> Any:
    rows = _rows(store, action)
    assert len(rows) == 1, (action, [(r.action, r.endpoint) for r in rows])
    for k, v in expect.items():
        assert getattr(r := rows[0], k) == v, (action, k, getattr(r, k), v)
    return rows[0]


def test_each_audited_action_leaves_one_row(api) -> None:  # type: ignore[no-untyped-def]
    c, store = api.client, api.store
    web_key = c.get("/v1/applications?limit=1", headers=api.web)  # a list page
    assert web_key.status_code == 200
    listed = _one(store, "list applications", status=200, endpoint="GET /v1/applications")
    canary = "CANARY-APPLICANT-7731"
    r = c.post("/v1/applications", json={**GOOD, "applicant_id": canary}, headers=api.web)
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    assert not _rows(store, "submission refused")  # an accepted submission is not a refusal

    assert c.get(f"/v1/applications/{app_id}", headers=api.web).status_code == 200
    read = _one(store, "read application", application_id=app_id, status=200,
                key_id=listed.key_id, channel="web")
    assert read.request_id and read.endpoint == f"GET /v1/applications/{app_id}"

    # another channel's key reading it: 404, audited as a refused read
    assert c.get(f"/v1/applications/{app_id}", headers=api.other).status_code == 404
    refused = _one(store, "read refused", application_id=app_id, status=404, channel="mobile")
    assert refused.key_id != read.key_id

    out = c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": "repaid"},
                 headers=api.web)
    assert out.status_code == 201, out.text
    _one(store, "outcome recorded", application_id=app_id, status=201)

    # refused submissions: a bad field (422), a channel the key may not use (403), no key (401)
    bad = c.post("/v1/applications", json={**GOOD, "income": "lots", "applicant_id": canary},
                 headers={**api.web, "X-Request-ID": "req-422"})
    assert bad.status_code == 422
    c.post("/v1/score", json={**GOOD, "channel": "mail"}, headers=api.web)
    c.post("/v1/applications", json=GOOD)
    rows = sorted(_rows(store, "submission refused"), key=lambda r: r.id)
    assert [(r.status, r.endpoint) for r in rows] == [
        (422, "POST /v1/applications"), (403, "POST /v1/score"), (401, "POST /v1/applications")]
    assert rows[0].request_id == "req-422" and rows[0].channel == "web"
    assert '"income"' in rows[0].details and canary not in rows[0].details
    assert '"channel"' in rows[1].details and rows[2].key_id is None

    # admin actions through the API
    assert c.post("/v1/admin/reload", headers=api.admin).status_code == 200
    _one(store, "admin reload", status=200, channel="call_center")
    assert c.put("/v1/admin/challenger", json={"mode": "off"},
                 headers=api.admin).status_code == 200
    _one(store, "admin challenger")
    batch = {"outcomes": [{"application_id": app_id, "outcome": "charged_off"}]}
    assert c.post("/v1/admin/outcomes", json=batch, headers=api.admin).status_code == 200
    _one(store, "admin outcome batch")
    # keys created (three by the fixture, one here) and revoked
    _, row = store.create_key(channel="mail")
    store.revoke_key(str(row.id))
    assert len(_rows(store, "key created")) == 4
    _one(store, "key revoked")

    page = c.get("/v1/admin/audit?limit=3", headers=api.admin)
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 3 and page.json()["next"]
    older = c.get(f"/v1/admin/audit?limit=500&before={page.json()['next']}",
                  headers=api.admin).json()
    ids = [i["id"] for i in page.json()["items"] + older["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert c.get("/v1/admin/audit", headers=api.web).status_code == 403
    mine = c.get(f"/v1/admin/audit?application={app_id}", headers=api.admin).json()["items"]
    assert {i["action"] for i in mine} == {"read application", "read refused",
                                           "outcome recorded"}
    assert canary not in page.text + str(older)
    assert verify(store.engine).ok


def _tamper(store: Store, sql: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql))


def test_verify_names_an_edited_or_deleted_row(db_url: str) -> None:
    from loanrisk.cli import app

    store = Store(db_url)
    for i in range(6):
        store.audit("read application", key_id=uuid.uuid4(), status=200, details={"i": i})
    ok = runner.invoke(app, ["audit", "verify", "--database", db_url])
    assert ok.exit_code == 0 and "6 rows verified" in ok.output, ok.output
    _tamper(store, "UPDATE audit_log SET status = 404 WHERE id = 3")
    res = runner.invoke(app, ["audit", "verify", "--database", db_url])
    assert res.exit_code == 1 and "row 3 was edited" in res.output, res.output
    _tamper(store, "UPDATE audit_log SET status = 200 WHERE id = 3")
    assert verify(store.engine).ok
    _tamper(store, "DELETE FROM audit_log WHERE id = 4")
    res = runner.invoke(app, ["audit", "verify", "--database", db_url])
    assert res.exit_code == 1 and "row 4 is missing" in res.output, res.output
    _tamper(store, "DELETE FROM audit_log WHERE id = 6")  # the newest row too
    assert verify(store.engine).bad_id == 4
    store.close()


def test_purge_is_audited_and_the_chain_still_verifies(db_url: str) -> None:
    from loanrisk.cli import app

    store = Store(db_url)
    for i in range(5):
        store.audit("read application", details={"i": i})
    assert purge(store.engine, datetime.now(UTC) + timedelta(seconds=1)) == 5
    store.audit("read application", details={"i": 5})
    assert verify(store.engine).ok and verify(store.engine).rows == 2
    _one(store, "audit purge")
    res = runner.invoke(app, ["audit", "purge", "--before", "2000-01-01", "--database", db_url])
    assert res.exit_code == 0, res.output
    assert len(_rows(store, "audit purge")) == 2 and verify(store.engine).ok
    _tamper(store, "DELETE FROM audit_log WHERE id = 6")  # the oldest row left after the purge
    assert verify(store.engine).bad_id == 6
    listed = runner.invoke(app, ["audit", "--action", "audit purge", "--json",
                                 "--database", db_url])
    assert listed.exit_code == 0 and '"audit purge"' in listed.output, listed.output
    store.close()


def test_concurrent_writers_keep_one_chain(db_url: str) -> None:
    stores = [Store(db_url), Store(db_url)]  # two "processes": two engines, two pools

    def write(store: Store) -> None:
        for i in range(25):
            store.audit("read application", details={"i": i})

    threads = [threading.Thread(target=write, args=(s,)) for s in stores for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = verify(stores[0].engine)
    assert verdict.ok and verdict.rows == 150, verdict
    for s in stores:
        s.close()
