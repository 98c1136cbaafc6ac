"""Issue 14 findings 2, 4, 5 and 9, on SQLite and PostgreSQL: hostile strings are 422s naming the
field (never a 500, never the value), error bodies stay small, and the OpenAPI document says
what the service answers."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from model_factory import GOOD

CANARY = "CANARY7c1e"
NUL = f"{CANARY}\u0000x"
LIMIT = 64 * 1024


def _refused(r, field: str, *values: str) -> dict:  # type: ignore[no-untyped-def]
    """A 422 naming ``field`` whose body holds none of ``values``."""
    assert r.status_code == 422, (r.status_code, r.text[:500])
    body = r.json()
    assert any(d["field"].split(".")[-1] == field for d in body["detail"]), body
    for v in (CANARY, *values):
        assert v not in r.text, r.text
    assert len(r.content) <= LIMIT
    return body


def _service_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the service logged (the test client's own request lines left out)."""
    return "\n".join(caplog.handler.format(r) for r in caplog.records
                     if not r.name.startswith("httpx"))


def _stored(api) -> str:  # type: ignore[no-untyped-def]
    r = api.client.post("/v1/applications", json={**GOOD, "external_ref": "REF-1"},
                        headers=api.web)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.mark.parametrize("field", ["applicant_id", "external_ref", "emp_title"])
@pytest.mark.parametrize("path", ["/v1/applications", "/v1/score"])
def test_nul_and_control_characters_in_bodies_are_422_naming_the_field(
        api, path: str, field: str, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    separator = [] if field == "emp_title" else [f"{CANARY}\u2028forged"]  # text may break lines
    for value in (NUL, f"{CANARY}\x1b[2J", f"{CANARY}\ud800", *separator):
        r = api.client.post(path, content=json.dumps({**GOOD, field: value}),  # \u escapes
                            headers={**api.web, "Content-Type": "application/json"})
        _refused(r, field)
    r = api.client.post("/v1/score", json=[GOOD, {**GOOD, field: NUL}], headers=api.web)
    assert _refused(r, field)["detail"][0]["loc"] == ["body", "1", field]
    if field == "emp_title":  # free text keeps its line breaks and tabs
        ok = api.client.post(path, json={**GOOD, field: "line one\nline\ttwo"}, headers=api.web)
        assert ok.status_code in (200, 201), ok.text
    assert api.store.count_applications() == (1 if field == "emp_title"
                                              and path == "/v1/applications" else 0)
    assert CANARY not in _service_log(caplog)


def test_nul_in_outcomes_headers_and_filters(api, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    c = api.client
    app_id = _stored(api)
    r = c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": "bad", "source": NUL},
               headers=api.web)
    _refused(r, "source")
    r = c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": NUL}, headers=api.web)
    _refused(r, "outcome")
    batch = {"outcomes": [{"external_ref": NUL, "outcome": "bad"},
                          {"application_id": app_id, "outcome": "bad", "source": NUL}]}
    body = _refused(c.post("/v1/admin/outcomes", json=batch, headers=api.admin), "external_ref")
    assert {d["field"] for d in body["detail"]} == {"outcomes.0.external_ref",
                                                    "outcomes.1.source"}
    for name in ("applicant_id", "external_ref", "decision", "channel"):
        _refused(c.get("/v1/applications", params={name: NUL}, headers=api.web), name)
    r = c.post("/v1/applications", json=GOOD, headers={**api.web, "Idempotency-Key": "a\x01b"})
    _refused(r, "Idempotency-Key")
    r = c.post("/v1/applications", json=GOOD, headers={**api.web, "Idempotency-Key": "  "})
    _refused(r, "Idempotency-Key")
    assert api.store.count_applications() == 1
    assert api.store.outcomes_of(uuid.UUID(app_id)) == []
    assert CANARY not in _service_log(caplog)


def test_an_unexpected_error_is_a_generic_500_logged_by_type(api, monkeypatch,
                                                             caplog) -> None:  # type: ignore[no-untyped-def]
    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"applicant {CANARY} in the message")

    monkeypatch.setattr(api.store, "list_applications", boom)
    caplog.set_level(logging.DEBUG)
    r = api.client.get("/v1/applications", params={"applicant_id": CANARY},
                       headers={**api.web, "X-Request-ID": "req-14"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "req-14"
    assert r.json()["request_id"] == "req-14" and CANARY not in r.text
    assert "RuntimeError" in caplog.text and CANARY not in _service_log(caplog)
    assert not any(rec.exc_info for rec in caplog.records)


def test_every_engine_hides_sql_parameters(api) -> None:  # type: ignore[no-untyped-def]
    assert api.store.engine.hide_parameters


def test_error_bodies_are_bounded(api) -> None:  # type: ignore[no-untyped-def]
    c = api.client
    r = c.post("/v1/score", json=[{}] * 1000, headers=api.web)
    assert r.status_code == 422 and len(r.content) < 16 * 1024
    body = r.json()
    assert len(body["detail"]) == 50 and body["errors_total"] > 1000
    unknown = {f"k{i:05d}": 1 for i in range(5900)}  # ~65 KB of unknown keys
    raw = json.dumps(unknown, separators=(",", ":")).encode()
    assert 60_000 < len(raw) <= 65_536
    r = c.post("/v1/score", content=raw,
               headers={**api.web, "Content-Type": "application/json"})
    assert r.status_code == 422 and len(r.content) < 16 * 1024
    assert r.json()["errors_total"] > 5900
    long = "n" * 5000
    r = c.post("/v1/score", json={**GOOD, long: 1}, headers=api.web)
    [item] = [d for d in r.json()["detail"] if d["type"] == "extra_forbidden"]
    assert item["field"] == "n" * 64 + "…" and long not in r.text
    many = {"x" * 60 + f"{i:04d}\u0000" * 10: 1 for i in range(3000)}
    r = c.post("/v1/score", json=many, headers=api.web)
    assert r.status_code in (413, 422) and len(r.content) <= LIMIT


def test_error_bodies_never_echo_values(api) -> None:  # type: ignore[no-untyped-def]
    c = api.client
    app_id = _stored(api)
    r = c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": "paid-late-CANARY"},
               headers=api.web)
    _refused(r, "outcome", "paid-late")
    assert "class label" in r.json()["detail"][0]["msg"]  # says what is accepted instead
    r = c.post("/v1/admin/outcomes", json={"outcomes": [{"external_ref": "REF-CANARY",
                                                         "outcome": "bad"}]}, headers=api.admin)
    _refused(r, "external_ref", "REF-")
    r = c.get("/v1/applications/zz-CANARY-not-a-uuid", headers=api.web)
    _refused(r, "application_id", "zz-", "`z`")
    r = c.get("/v1/applications", params={"since": "CANARY-yesterday"}, headers=api.web)
    _refused(r, "since", "yesterday")
    r = c.get("/v1/applications", params={"limit": "CANARY9"}, headers=api.web)
    _refused(r, "limit")
    r = c.post("/v1/admin/promote", json={"version": "CANARY"}, headers=api.admin)
    _refused(r, "version")


def test_openapi_describes_the_answers(api) -> None:  # type: ignore[no-untyped-def]
    c = api.client
    doc = c.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    promote = doc["paths"]["/v1/admin/promote"]["post"]["responses"]["422"]
    ref = promote["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    detail = schemas[ref]["properties"]["detail"]
    assert {"type": "string"} in detail["anyOf"] and any(
        s.get("type") == "array" for s in detail["anyOf"])
    r = c.post("/v1/admin/promote", json={"version": "x"}, headers=api.admin)
    assert isinstance(r.json()["detail"], list)  # a list, as documented
    r = c.post("/v1/admin/outcomes", json={"outcomes": [{"outcome": 5}]}, headers=api.admin)
    assert all(isinstance(x, str) for d in r.json()["detail"] for x in d["loc"])
    r = c.delete("/v1/applications", headers=api.web)
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}
    listing = doc["paths"]["/v1/applications"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert "microseconds" in params["before"]["description"]
    assert params["before"]["schema"]["anyOf"][0]["pattern"]
    create = {p["name"]: p for p in doc["paths"]["/v1/applications"]["post"]["parameters"]}
    idem = create["Idempotency-Key"]
    assert "only spaces" in idem["description"] and idem["schema"]["pattern"]
    assert params["since"]["schema"]["format"] == "date-time"
    assert params["applicant_id"]["schema"]["pattern"].startswith("^[^\\x00-\\x1f")
    outcome = schemas["OutcomeCreate"]["properties"]["outcome"]
    assert "charged_off" in outcome["description"] and "[cC][hH]" in outcome["pattern"]
    for path_item in doc["paths"].values():
        for op in path_item.values():
            assert {"413", "500"} <= set(op["responses"])
            if op.get("security"):
                assert {"401", "429", "503"} <= set(op["responses"])
