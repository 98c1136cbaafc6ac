"""/health, /ready, /metrics, OpenAPI, and readiness before a model is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Api
from model_factory import BAD, GOOD


def test_health_ready_metrics(api: Api) -> None:
    c = api.client
    assert c.get("/health").status_code == 200
    ready = c.get("/ready").json()
    assert ready["ready"] and ready["model"]["name"] == "fixture-default"
    c.post("/v1/score", json=[GOOD, BAD], headers=api.web)
    c.post("/v1/applications", json=BAD, headers=api.web)
    text = c.get("/metrics").text
    assert 'loanrisk_requests_total{method="POST",route="/v1/score",status="200"}' in text
    assert 'loanrisk_request_seconds_bucket{le="0.5",method="POST",route="/v1/applications",' \
           'status="201"}' in text
    assert 'loanrisk_decisions_total{decision="decline",endpoint="applications",tier="high"}' \
        ' 1.0' in text
    assert 'loanrisk_model_info{model="fixture",name="fixture-default"' in text


def test_openapi_documents_every_endpoint(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in ("/v1/applications", "/v1/applications/{application_id}",
              "/v1/applications/{application_id}/outcome", "/v1/score", "/health", "/ready",
              "/metrics", "/v1/admin/versions", "/v1/admin/promote", "/v1/admin/rollback",
              "/v1/admin/reload"):
        assert p in paths, p
        for op in paths[p].values():
            assert op.get("summary") and op.get("description"), (p, op)
    # the bodies are the served model's own schema, and its example is a valid application
    app_schema = spec["components"]["schemas"]["Application"]
    assert app_schema["additionalProperties"] is False and "income" in app_schema["properties"]
    body = paths["/v1/applications"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Application"}
    assert api.client.post("/v1/score", json=body["example"], headers=api.web).status_code == 200
    score = paths["/v1/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert score["anyOf"][1]["type"] == "array" and score["anyOf"][1]["maxItems"] == 1000
    docs = api.client.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text  # works offline
    js = docs.text.split('src="')[1].split('"')[0]
    assert api.client.get(js).status_code == 200


def test_not_ready_without_model(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from loanrisk.api.app import create_app
    from loanrisk.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    key, _ = store.create_key(channel="web")
    app = create_app(model_dir=tmp_path / "missing", store=store)
    with TestClient(app) as c:
        import time

        deadline = time.monotonic() + 10  # the load fails in the background, soon
        r = c.get("/ready")
        while "missing" not in r.json().get("error", "") and time.monotonic() < deadline:
            time.sleep(0.05)
            r = c.get("/ready")
        assert r.status_code == 503 and "missing" in r.json()["error"]
        assert c.get("/health").status_code == 200
        s = c.post("/v1/score", json=GOOD, headers={"Authorization": f"Bearer {key}"})
        assert s.status_code == 503


def test_every_answer_carries_a_request_id_that_names_its_log_lines(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from loanrisk.api.middleware import SERVICE_LOG_FORMAT, RequestIdFormatter

    r = api.client.get("/health")
    made = r.headers["x-request-id"]
    assert len(made) == 32 and int(made, 16) >= 0  # a new id when the caller sends none
    r = api.client.get("/health", headers={"X-Request-ID": "gw-7f3a.9c:1"})
    assert r.headers["x-request-id"] == "gw-7f3a.9c:1"  # a gateway's id is kept
    r = api.client.get("/health", headers={"X-Request-ID": "bad id;" + "x" * 200})
    assert len(r.headers["x-request-id"]) == 32  # spaces, ";" or too long: replaced
    big = api.client.post("/v1/score", content=b"{" + b" " * 70_000 + b"}",
                          headers={**api.web, "X-Request-ID": "req-413"})
    assert big.status_code == 413 and big.headers["x-request-id"] == "req-413"
    with caplog.at_level(logging.WARNING, logger="loanrisk.api.routes.admin"):
        r = api.client.post("/v1/admin/reload", headers={**api.admin, "X-Request-ID": "audit-1"})
    assert r.status_code in (200, 202, 409), r.text
    audit = [rec for rec in caplog.records if rec.name == "loanrisk.api.routes.admin"]
    assert audit and audit[-1].request_id == "audit-1"  # type: ignore[attr-defined]
    line = RequestIdFormatter(SERVICE_LOG_FORMAT).format(audit[-1])
    assert line.startswith("WARNING loanrisk.api.routes.admin [audit-1]: admin reload")


def test_a_store_without_keys_is_announced_at_start(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from loanrisk.api.app import create_app
    from loanrisk.config import get_settings
    from loanrisk.store import Store

    store = Store(f"sqlite:///{tmp_path / 'k.db'}")
    with caplog.at_level(logging.WARNING, logger="loanrisk.api.app"):
        create_app(get_settings(), model_dir=tmp_path, store=store, start_model=False)
    assert any("no active API key" in r.getMessage() for r in caplog.records)
    store.create_key(channel="web")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="loanrisk.api.app"):
        create_app(get_settings(), model_dir=tmp_path, store=store, start_model=False)
    assert not any("no active API key" in r.getMessage() for r in caplog.records)
    store.close()
