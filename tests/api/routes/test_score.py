"""POST /v1/score (single, batch), validation errors, auth, body limit and rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Api, make_api
from model_factory import BAD, GOOD


def test_score_single_and_batch(api: Api) -> None:
    r = api.client.post("/v1/score", json=GOOD, headers=api.web)
    assert r.status_code == 200 and r.json()["decision"] == "approve"
    assert r.json()["risk_tier"] in {"low", "medium"}
    batch = api.client.post("/v1/score", json=[GOOD, BAD], headers=api.web)
    assert [d["decision"] for d in batch.json()] == ["approve", "decline"]
    assert api.store.count_applications() == 0  # never stored


@pytest.mark.parametrize("body,field,why", [
    ({**GOOD, "decision": "approve"}, "decision", "Unknown field"),
    ({**GOOD, "model_version": 3}, "model_version", "Unknown field"),
    ({**GOOD, "id": "x"}, "id", "Unknown field"),
    ({**GOOD, "income": "lots"}, "income", "number"),
    ({**GOOD, "income": "72000"}, "income", "(not a string, not a boolean)"),
    ({**GOOD, "income": True}, "income", "boolean"),
    ({**GOOD, "income": -5}, "income", "greater than or equal"),
    ({**GOOD, "dti": 1e9}, "dti", "less than or equal"),
    ({**GOOD, "purpose": "yacht"}, "purpose", "'car'"),
    ({k: v for k, v in GOOD.items() if k != "income"}, "income", "required"),
    ({**GOOD, "income": None}, "income", "may not be null"),
    ({**GOOD, "purpose": None}, "purpose", "may not be null"),  # not a list of every category
    ({**GOOD, "channel": "fax"}, "channel", "'web'"),
])
def test_validation_names_field(api: Api, body: dict, field: str, why: str) -> None:
    r = api.client.post("/v1/score", json=body, headers=api.web)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["field"] == field and why in d["msg"] for d in detail), detail


def test_every_bad_field_is_named_and_nullable_ok(api: Api) -> None:
    r = api.client.post("/v1/score", json={"income": -1, "purpose": "yacht", "score": 1},
                        headers=api.web)
    assert {d["field"] for d in r.json()["detail"]} == {"income", "purpose", "score"}
    ok = api.client.post("/v1/score", json={**GOOD, "dti": None, "emp_title": "nurse"},
                         headers=api.web)
    assert ok.status_code == 200  # dti was missing in training: may be null
    bad_json = api.client.post("/v1/score", content=b"{nope", headers=api.web)
    assert bad_json.status_code == 422 and bad_json.json()["detail"][0]["field"] == "body"
    batch = api.client.post("/v1/score", json=[GOOD, {**GOOD, "dti": -3}], headers=api.web)
    assert batch.json()["detail"][0]["loc"] == ["body", "1", "dti"]


def test_auth(api: Api) -> None:
    assert api.client.post("/v1/score", json=GOOD).status_code == 401
    r = api.client.post("/v1/score", json=GOOD, headers={"Authorization": "Bearer lr_nope"})
    assert r.status_code == 401
    assert api.client.get("/v1/admin/versions", headers=api.web).status_code == 403


def test_an_expired_key_is_refused(api: Api) -> None:
    from datetime import UTC, datetime, timedelta

    token, _ = api.store.create_key(channel="web",  # type: ignore[attr-defined]
                                    expires_at=datetime.now(UTC) - timedelta(minutes=1))
    r = api.client.post("/v1/score", json=GOOD, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["detail"] == "unknown, revoked or expired API key"


def test_schema_endpoint(api: Api) -> None:
    s = api.client.get("/v1/schema", headers=api.web).json()
    assert set(s["required"]) == {"income", "purpose"}
    assert s["additionalProperties"] is False


@pytest.fixture
def tight(tmp_path: Path, model_dir: Path) -> Iterator[Api]:
    yield from make_api(f"sqlite:///{tmp_path / 's.db'}", model_dir, rate_limit_per_minute=3,
                        body_limit_bytes=2000)


def test_body_limit_and_rate_limit(tight: Api) -> None:
    big = {**GOOD, "emp_title": "x" * 3000}
    assert tight.client.post("/v1/score", json=big, headers=tight.web).status_code == 413
    codes = [tight.client.post("/v1/score", json=GOOD, headers=tight.admin).status_code
             for _ in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    r = tight.client.post("/v1/score", json=GOOD, headers=tight.admin)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # another key has its own bucket
    assert tight.client.post("/v1/score", json=GOOD, headers=tight.other).status_code == 200


def test_rate_limit_is_shared_by_every_process_through_redis(tmp_path: Path,
                                                             model_dir: Path) -> None:
    """Two service instances (one store, the real Redis): a key gets its limit once, not twice."""
    import time

    from fastapi.testclient import TestClient

    from loanrisk.api.app import create_app
    from loanrisk.config import get_settings
    from loanrisk.store import Store

    settings = get_settings().model_copy(update={"rate_limit_per_minute": 3,
                                                 "rate_limit_url": "redis://127.0.0.1:6379/0"})
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    token, _ = store.create_key(channel="web")
    key = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, model_dir=model_dir, store=store)) as a, \
            TestClient(create_app(settings, model_dir=model_dir, store=store)) as b:
        for client in (a, b):
            for _ in range(200):
                if client.get("/ready").status_code == 200:
                    break
                time.sleep(0.02)
        codes = [c.post("/v1/score", json=GOOD, headers=key).status_code for c in (a, b, a, b)]
        assert codes == [200, 200, 200, 429], codes  # per process it would be 4 x 200
        assert "loanrisk_rate_limit_fallbacks_total 0.0" in b.get("/metrics").text
    store.close()


@pytest.mark.parametrize("body,why", [
    (b"[" * 30000 + b"]" * 30000, "nested too deeply"),  # a RecursionError in the parser
    (b'{"applicant_id": "\xe9"}', "not UTF-8 text at byte 18"),
    (b"5", "a JSON object of attributes"),
    (b"null", "a JSON object of attributes"),
    (b'{"income": ' + b"9" * 5000 + b"}", "invalid JSON (Exceeds the limit"),
])
def test_bodies_that_are_not_applications_are_422(api: Api, body: bytes, why: str) -> None:
    r = api.client.post("/v1/score", content=body,
                        headers={**api.web, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert why in r.json()["detail"][0]["msg"], r.json()
    assert "Application_" not in r.text  # no internal class names
