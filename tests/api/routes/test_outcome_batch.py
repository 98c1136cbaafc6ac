"""POST /v1/admin/outcomes: outcomes in bulk over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from model_factory import BAD, GOOD


def _submit(api, body: dict, ref: str) -> str:  # type: ignore[no-untyped-def]
    r = api.client.post("/v1/applications", json={**body, "external_ref": ref}, headers=api.web)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_batch_all_or_nothing_then_recorded_once(api) -> None:  # type: ignore[no-untyped-def]
    c = api.client
    good, bad = _submit(api, GOOD, "LN-1"), _submit(api, BAD, "LN-2")
    batch = {"outcomes": [
        {"application_id": good, "outcome": "repaid", "recorded_at": "2026-11-01T00:00:00Z"},
        {"external_ref": "LN-2", "outcome": "charged_off", "source": "collections"},
    ]}
    assert c.post("/v1/admin/outcomes", json=batch, headers=api.web).status_code == 403
    wrong = {"outcomes": [*batch["outcomes"], {"application_id": str(uuid.uuid4()),
                                               "outcome": "maybe"}]}
    r = c.post("/v1/admin/outcomes", json=wrong, headers=api.admin)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["body", "outcomes", "2", "application_id"]  # strings (OpenAPI)
    assert detail[0]["msg"].startswith("no stored application")
    assert c.get(f"/v1/applications/{good}", headers=api.web).json()["outcomes"] == []

    dry = c.post("/v1/admin/outcomes", json={**batch, "dry_run": True}, headers=api.admin)
    assert dry.json() == {"rows": 2, "recorded": 2, "unchanged": 0, "applications": 2,
                          "rejected": [], "dry_run": True}
    done = c.post("/v1/admin/outcomes", json=batch, headers=api.admin)
    assert done.status_code == 200 and done.json()["recorded"] == 2, done.text
    outcomes = c.get(f"/v1/applications/{bad}", headers=api.web).json()["outcomes"]
    assert [(o["outcome"], o["source"]) for o in outcomes] == [("charged_off", "collections")]
    first = c.get(f"/v1/applications/{good}", headers=api.web).json()["outcomes"][0]
    assert first["source"] == "call_center"  # the admin key's channel, as for one outcome
    assert first["recorded_at"].startswith("2026-11-01")
    again = c.post("/v1/admin/outcomes", json=batch, headers=api.admin).json()
    assert (again["recorded"], again["unchanged"]) == (0, 2)  # a resent batch: nothing twice

    skip = c.post("/v1/admin/outcomes", headers=api.admin, json={
        "skip_invalid": True, "outcomes": [{"application_id": good, "outcome": "Z"},
                                           {"application_id": good, "outcome": "bad"}]})
    assert skip.status_code == 200 and skip.json()["recorded"] == 1
    assert skip.json()["rejected"][0]["row"] == 0
    assert skip.json()["rejected"][0]["error"].startswith("unknown outcome word")


def test_batch_body_is_checked(api) -> None:  # type: ignore[no-untyped-def]
    c = api.client
    for body in ({"outcomes": []}, {"outcomes": [{"outcome": "bad", "decision": "approve"}]},
                 {"rows": []}):
        r = c.post("/v1/admin/outcomes", json=body, headers=api.admin)
        assert r.status_code == 422, (body, r.text)
    r = c.post("/v1/admin/outcomes", json={"outcomes": [{"outcome": "bad"}]}, headers=api.admin)
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"] == "empty: give application_id or external_ref"
