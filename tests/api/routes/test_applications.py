"""POST/GET /v1/applications, outcomes, idempotency, visibility: on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid

from model_factory import BAD, GOOD


def test_create_read_outcome(api) -> None:
    c = api.client
    r = c.post("/v1/applications", json={**BAD, "external_ref": "call-77"}, headers=api.web)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["decision"] == "decline" and body["risk_tier"] == "high"
    assert set(body["probabilities"]) == {"good", "bad"}
    assert body["reasons"] and body["reasons"][0] == "Debt-to-income ratio is high"
    assert body["model"]["sha256"] and body["channel"] == "web"
    assert body["external_ref"] == "call-77" and body["created_at"]
    app_id = body["id"]

    got = c.get(f"/v1/applications/{app_id}", headers=api.web)
    assert got.status_code == 200
    assert got.json()["attributes"]["income"] == BAD["income"]
    assert got.json()["decision"] == "decline"
    assert c.get(f"/v1/applications/{app_id}", headers=api.admin).status_code == 200
    assert c.get(f"/v1/applications/{app_id}", headers=api.other).status_code == 404
    assert c.get(f"/v1/applications/{uuid.uuid4()}", headers=api.web).status_code == 404

    out = c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": "bad",
                                                             "source": "servicing"},
                 headers=api.web)
    assert out.status_code == 201 and out.json()["outcome"] == "bad"
    assert c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": "bad"},
                  headers=api.other).status_code == 404
    assert c.get(f"/v1/applications/{app_id}", headers=api.web).json()["outcomes"][0][
        "source"] == "servicing"
    # a bad outcome body: the same 422 format as applications, the value not echoed
    bad = c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": "bad", "secret": 123456},
                 headers=api.web)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "secret"
    assert "123456" not in bad.text
    # an outcome the model's classes do not know is refused, saying what is accepted
    typo = c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": "maybe"},
                  headers=api.web)
    assert typo.status_code == 422 and typo.json()["detail"][0]["field"] == "outcome"
    assert "good, bad" in typo.json()["detail"][0]["msg"] and "repaid" in typo.json()[
        "detail"][0]["msg"]
    words = c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": " Charged_Off "},
                   headers=api.web)
    assert words.status_code == 201 and words.json()["outcome"] == "Charged_Off"
    not_json = c.post(f"/v1/applications/{app_id}/outcome", content=b'{"outcome": "bad"}',
                      headers={**api.web, "Content-Type": "text/plain"})
    assert not_json.status_code == 422 and "Content-Type: application/json" in not_json.text
    for raw in (b'{"outcome": "\xff"}', b"[" * 30000 + b"]" * 30000):  # bad UTF-8, too deep
        r = c.post(f"/v1/applications/{app_id}/outcome", content=raw,
                   headers={**api.web, "Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid", r.text
    broken = c.post(f"/v1/applications/{app_id}/outcome", content=b'{"outcome":',
                    headers={**api.web, "Content-Type": "application/json"})
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["field"] == "body"
    assert "invalid JSON at position" in broken.json()["detail"][0]["msg"]
    # one timestamp format in every answer
    assert body["created_at"].endswith("Z") and got.json()["created_at"] == body["created_at"]
    assert api.store.count_applications() == 1


def test_unpaired_surrogate_is_refused(api) -> None:
    body = b'{"income": 50000, "dti": 10, "purpose": "car", "emp_title": "\\ud800"}'
    r = api.client.post("/v1/applications", content=body,
                        headers={**api.web, "Content-Type": "application/json"})
    assert r.status_code == 422 and "surrogate" in r.json()["detail"][0]["msg"]
    assert api.store.count_applications() == 0


def test_empty_idempotency_key_is_refused(api) -> None:
    r = api.client.post("/v1/applications", json=GOOD, headers={**api.web,
                                                                "Idempotency-Key": "  "})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "Idempotency-Key"
    assert api.store.count_applications() == 0


def test_channel_defaults_to_key(api) -> None:
    body = {k: v for k, v in GOOD.items() if k != "channel"}
    r = api.client.post("/v1/applications", json=body, headers=api.admin)
    assert r.status_code == 201 and r.json()["channel"] == "call_center"
    assert r.json()["decision"] == "approve"


def test_idempotency_replay_conflict(api) -> None:
    c = api.client
    h = {**api.web, "Idempotency-Key": "7f3a9c"}
    first = c.post("/v1/applications", json=GOOD, headers=h)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    # same body, keys in another order: replayed
    again = c.post("/v1/applications", json=dict(reversed(list(GOOD.items()))), headers=h)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.content == first.content  # byte for byte: key order too (PostgreSQL's JSONB)
    conflict = c.post("/v1/applications", json=BAD, headers=h)
    assert conflict.status_code == 422 and conflict.json()["detail"][0]["field"] == \
        "Idempotency-Key"
    # the same idempotency key from another API key is another application
    other = c.post("/v1/applications", json=GOOD, headers={**api.other, "Idempotency-Key":
                                                           "7f3a9c"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert api.store.count_applications() == 2


def test_concurrent_duplicates_store_one(api) -> None:
    c = api.client
    h = {**api.web, "Idempotency-Key": "race-1"}
    codes: list[int] = []
    ids: set[str] = set()
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        r = c.post("/v1/applications", json=GOOD, headers=h)
        codes.append(r.status_code)
        ids.add(r.json()["id"])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes).count(201) == 1 and set(codes) <= {200, 201}
    assert len(ids) == 1 and api.store.count_applications() == 1


def test_unstored_on_invalid(api) -> None:
    r = api.client.post("/v1/applications", json={**GOOD, "decision": "approve"},
                        headers=api.web)
    assert r.status_code == 422
    assert api.store.count_applications() == 0


def test_list_pages_newest_first_for_the_key_that_submitted(api) -> None:
    from datetime import UTC, datetime, timedelta

    c = api.client
    start = datetime.now(UTC) - timedelta(seconds=1)
    ids = []
    for i in range(5):
        r = c.post("/v1/applications", json={**(GOOD if i % 2 else BAD), "applicant_id": f"a{i}"},
                   headers=api.web)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    assert c.post("/v1/applications", json=GOOD, headers=api.other).status_code == 201

    first = c.get("/v1/applications", headers=api.web).json()
    assert [a["id"] for a in first["items"]] == ids[::-1] and first["next"] is None
    assert "attributes" not in first["items"][0]  # attribute values only when reading one
    seen, cursor = [], None
    while True:  # two at a time: every application once, in order
        page = c.get("/v1/applications", params={"limit": 2, **({"before": cursor} if cursor
                                                                   else {})},
                     headers=api.web).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert len(c.get("/v1/applications", headers=api.admin).json()["items"]) >= 6
    assert len(c.get("/v1/applications", headers=api.other).json()["items"]) == 1
    one = c.get("/v1/applications", params={"applicant_id": "a3"}, headers=api.web).json()
    assert [a["id"] for a in one["items"]] == [ids[3]]
    declines = c.get("/v1/applications", params={"decision": "decline"}, headers=api.web).json()
    assert {a["id"] for a in declines["items"]} == {ids[0], ids[2], ids[4]}
    since = c.get("/v1/applications", params={"since": start.isoformat()},
                  headers=api.web).json()
    assert len(since["items"]) == 5
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert c.get("/v1/applications", params={"since": later},
                 headers=api.web).json()["items"] == []
    bad = c.get("/v1/applications", params={"before": "nope"}, headers=api.web)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "before"
    assert c.get("/v1/applications", params={"limit": 0}, headers=api.web).status_code == 422
    assert c.get("/v1/applications").status_code == 401
