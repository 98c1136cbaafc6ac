"""The served model is exactly the registered one (issue 14, findings 1, 3 and 6).

A real `loanrisk serve --model NAME` on a free port, on SQLite and on PostgreSQL, restarted over
a serving cache an attacker has written to: another version's graph and manifest copied over the
champion's, a manifest edited alone, a file planted, both copies gone. Whatever was done, nothing
but the registered bytes is served or recorded as the registered version; a damaged cache is
repaired from the registry's copy; /ready is 503 with a true reason (and no filesystem path)
while nothing verified is served; promoting or rolling back to a version whose files fail
verification is a 422, never a 500.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import fresh_pg_schema  # noqa: E402
from model_factory import (  # noqa: E402
    GOOD,
    build_model_dir,
    register_dir,
    registry_copy,
    write_eval,
)
from service_proc import Server, new_key, service_env  # noqa: E402

NAME = "tamper-test"
DOWN = {"LOANRISK_TRACKING_URI": "http://127.0.0.1:9", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "1"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with fresh_pg_schema() as url:
        yield url


def _registry(home: Path):  # type: ignore[no-untyped-def]
    from loanrisk.config import Settings
    from loanrisk.registry import Registry

    return Registry(Settings(home=home))


def _files(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file()}


def _wait_ready_error(server: Server, words: str, timeout: float = 60.0) -> dict:
    """The /ready body once its (503) error says ``words`` (a loaded CI machine may first see
    "registry unreachable" for a while before the service falls back to its cache)."""
    import time

    t0 = time.perf_counter()
    body: dict = {}
    while time.perf_counter() - t0 < timeout:
        r = httpx.get(server.url + "/ready", timeout=5)
        body = r.json()
        if words in (body.get("error") or ""):
            assert r.status_code == 503 and body["ready"] is False and body["model"] is None
            return body
        time.sleep(0.1)
    raise AssertionError(f"/ready never said {words!r}: {body}")


def _start_refused(args: list[str], env: dict[str, str], log: Path) -> Server:
    """Start a server that is expected never to become ready."""
    server = Server(args, env, log)
    server.launch()
    server.wait_listening()
    return server


def test_tampered_cache_is_never_served(tmp_path: Path, store_url: str) -> None:
    home = tmp_path / "home"
    env = service_env(home, LOANRISK_DATABASE_URL=store_url)
    reg = _registry(home)
    v1 = register_dir(reg, write_eval(build_model_dir(tmp_path / "v1", name=NAME)), name=NAME)
    v2 = register_dir(reg, write_eval(build_model_dir(tmp_path / "v2", name=NAME, w_dti=0.2,
                                                      bias=1.0)), name=NAME)
    assert reg.promote(NAME, v1).promoted
    sha1, sha2 = reg.info(NAME, v1).sha256, reg.info(NAME, v2).sha256
    key = {"Authorization": f"Bearer {new_key(env, '--channel', 'web')}"}
    admin = {"Authorization": f"Bearer {new_key(env, '--admin')}"}
    log = tmp_path / "s.log"
    args = ["--model", NAME, "--poll-seconds", "0.3"]

    # 1. the registry up: v1 verified and served; what it decides is the reference
    server = Server(args, env, log)
    server.start()
    truth = httpx.post(server.url + "/v1/score", json=GOOD, headers=key).json()
    assert truth["model"] == {"name": NAME, "version": v1, "sha256": sha1}
    server.stop()
    cache = home / "serving" / NAME / str(v1)
    registered = _files(registry_copy(reg, NAME, v1))
    assert _files(cache) == registered

    # 2. v2's graph and manifest copied over v1's, restarted while the registry is down:
    # nothing is served (not v2's bytes labelled v1), /ready says why, without a path
    for name in ("model.onnx", "manifest.json"):
        shutil.copy(registry_copy(reg, NAME, v2) / name, cache / name)
    server = _start_refused(args, service_env(home, LOANRISK_DATABASE_URL=store_url, **DOWN),
                            log)
    try:
        body = _wait_ready_error(server, "fails verification")
        assert str(home) not in json.dumps(body) and "…/" not in body["error"]
        assert "model.onnx" in body["error"]
        r = httpx.post(server.url + "/v1/score", json=GOOD, headers=key)
        assert r.status_code == 503
        r = httpx.post(server.url + "/v1/applications", json=GOOD, headers=key)
        assert r.status_code == 503  # nothing decided, nothing stored
    finally:
        server.stop()

    # 3. the registry up again: the cache is repaired from the registry's copy and v1, byte for
    # byte, is served and recorded
    server = Server(args, env, log)
    server.start()
    try:
        assert _files(cache) == registered
        again = httpx.post(server.url + "/v1/score", json=GOOD, headers=key).json()
        assert again == truth
        stored = httpx.post(server.url + "/v1/applications", json=GOOD, headers=key).json()
        assert stored["model"]["sha256"] == sha1 != sha2
        assert httpx.get(server.url + "/ready").json()["error"] is None
    finally:
        server.stop()

    # 4. the manifest alone edited (its graph hash left right: thresholds moved) and a file
    # planted: refused while the registry is down, repaired when it is up
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["decision"] = {"decline_threshold": 0.99, "rule": "attacker"}
    (cache / "manifest.json").write_text(json.dumps(manifest))
    (cache / "evil.onnx").write_bytes(b"planted")
    server = _start_refused(args, service_env(home, LOANRISK_DATABASE_URL=store_url, **DOWN),
                            log)
    try:
        body = _wait_ready_error(server, "fails verification")
        assert "manifest.json" in body["error"] and "evil.onnx" in body["error"]
    finally:
        server.stop()
    server = Server(args, env, log)
    server.start()
    try:
        assert httpx.post(server.url + "/v1/score", json=GOOD, headers=key).json() == truth
        assert _files(cache) == registered

        # 5. promote or roll back to a version whose registry copy fails verification: 422
        (registry_copy(reg, NAME, v2) / "schema.json").write_text("{}")
        for force in (False, True):
            r = httpx.post(server.url + "/v1/admin/promote", headers=admin, timeout=30,
                           json={"version": v2, "force": force})
            assert r.status_code == 422, r.text
            assert "schema.json differs" in r.json()["detail"] and str(home) not in r.text
        assert reg.champion(NAME).version == v1
        r = httpx.put(server.url + "/v1/admin/challenger", headers=admin, timeout=30,
                      json={"mode": "shadow", "version": v2})
        assert r.status_code == 200 and not r.json()["active"]
        assert "schema.json differs" in r.json()["error"]
    finally:
        server.stop()

    # 6. both copies of the champion's files gone: /ready says nothing is served, truly
    shutil.rmtree(registry_copy(reg, NAME, v1))
    shutil.rmtree(cache)
    server = _start_refused(args, env, log)
    try:
        body = _wait_ready_error(server, "nothing is served")
        assert "cannot be read" in body["error"] and "unreachable" not in body["error"]
        assert str(home) not in json.dumps(body) and "Errno" not in body["error"]
        r = httpx.post(server.url + "/v1/admin/reload", headers=admin, timeout=30)
        assert r.status_code == 200 and r.json()["ready"] is False, r.text
        assert httpx.get(server.url + "/ready").status_code == 503
    finally:
        server.stop()
    assert "Traceback" not in log.read_text()
