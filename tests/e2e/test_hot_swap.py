"""Hot swap for real: promote / roll back through the admin API while a client keeps sending.

Zero answers outside 2xx (429 allowed); a model failing its golden check is refused and the old
one keeps serving; the service starts from the serving cache when the tracking server is down.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import BAD, GOOD, build_model_dir, register_dir, write_eval  # noqa: E402
from service_proc import Server, new_key, service_env  # noqa: E402

NAME = "swap-test"


def _registry(home: Path):  # type: ignore[no-untyped-def]
    from loanrisk.config import Settings
    from loanrisk.registry import Registry

    return Registry(Settings(home=home))


def test_promote_rollback_under_load(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = service_env(home, LOANRISK_RATE_LIMIT_PER_MINUTE="100000")
    reg = _registry(home)
    v1 = register_dir(reg, write_eval(build_model_dir(tmp_path / "v1", name=NAME)), name=NAME)
    v2 = register_dir(reg, write_eval(build_model_dir(tmp_path / "v2", name=NAME, w_dti=0.2)),
                      name=NAME)
    broken = build_model_dir(tmp_path / "v3", name=NAME, w_dti=0.25)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["golden"]["probabilities"][0] = [0.5, 0.5]  # fails the golden-input check
    (broken / "manifest.json").write_text(json.dumps(manifest))
    v3 = register_dir(reg, write_eval(broken), name=NAME)
    assert reg.promote(NAME, v1).promoted
    admin = {"Authorization": f"Bearer {new_key(env, '--admin')}"}
    key = {"Authorization": f"Bearer {new_key(env, '--channel', 'chatbot')}"}
    server = Server(["--model", NAME, "--poll-seconds", "0.5"], env, tmp_path / "s.log")
    server.start()
    codes: Counter[int] = Counter()
    versions: Counter[int] = Counter()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            while not stop.is_set():
                r = c.post("/v1/score", json=[GOOD, BAD], headers=key)
                codes[r.status_code] += 1
                if r.status_code == 200:
                    versions[r.json()[0]["model"]["version"]] += 1

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60, headers=admin) as c:
            assert [v["version"] for v in c.get("/v1/admin/versions").json()] == [v1, v2, v3]
            for _ in range(3):
                p = c.post("/v1/admin/promote", json={"version": v2, "force": True})
                assert p.status_code == 200 and p.json()["serving"]["version"] == v2, p.text
                time.sleep(0.2)
                back = c.post("/v1/admin/rollback")
                assert back.status_code == 200 and back.json()["serving"]["version"] == v1
                time.sleep(0.2)
            # a version that cannot be served is never made champion, even forced (issue 14)
            refused = c.post("/v1/admin/promote", json={"version": v3, "force": True})
            assert refused.status_code == 422, refused.text
            assert "golden" in refused.json()["detail"]
            assert "champion is unchanged" in refused.json()["detail"]
            assert f"v{v3}: golden" in refused.json()["detail"]
            assert str(tmp_path) not in refused.text and "…/" not in refused.text  # no paths
            ready = c.get("/ready").json()
            assert ready["model"]["version"] == v1 and ready["error"] is None
            better = c.post("/v1/admin/promote", json={"version": v2})  # v2 beats v1
            assert better.status_code == 200 and "beats" in better.json()["reason"], better.text
            gate = c.post("/v1/admin/promote", json={"version": v1})
            assert gate.status_code == 422 and "does not beat" in gate.json()["detail"]
            assert 'send "force": true' in gate.json()["detail"]  # HTTP advice, not CLI flags
            assert c.post("/v1/admin/rollback").json()["serving"]["version"] == v1
            # the access audit in the store (issue 16): exactly one row per admin action
            counts = {a: len(c.get("/v1/admin/audit", params={"action": a}).json()["items"])
                      for a in ("admin promote", "admin promote refused", "admin rollback")}
            assert counts == {"admin promote": 4, "admin promote refused": 2,
                              "admin rollback": 4}, counts
            unknown = c.post("/v1/admin/promote", json={"version": 99})
            assert unknown.status_code == 422
            assert "GET /v1/admin/versions" in unknown.json()["detail"]
            assert c.post("/v1/admin/promote", json={"version": True}).status_code == 422
            itself = c.put("/v1/admin/challenger", json={"mode": "shadow", "version": v1})
            assert itself.status_code == 422 and "is the champion" in itself.json()["detail"]
            unnamed = c.put("/v1/admin/challenger", json={"mode": "canary"})
            assert unnamed.status_code == 422 and '"version"' in unnamed.json()["detail"]
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        server.stop()
    assert set(codes) <= {200, 429}, codes
    assert versions[v1] > 0 and versions[v2] > 0 and v3 not in versions
    log = (tmp_path / "s.log").read_text()  # the audit trail: who moved the champion, and why
    assert log.count("admin promote by key") >= 3 and "admin rollback by key" in log
    assert "admin promote refused by key" in log
    for token in (key["Authorization"].split()[1], admin["Authorization"].split()[1]):
        assert token not in log


def test_serves_cached_champion_when_tracking_is_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    reg = _registry(home)
    v1 = register_dir(reg, build_model_dir(tmp_path / "v1", name=NAME), name=NAME)
    reg.promote(NAME, v1)
    # a first start with the registry up: v1 verified, swapped in and recorded in the store
    first = Server(["--model", NAME], service_env(home), tmp_path / "first.log")
    first.start()
    first.stop()
    env = service_env(home, LOANRISK_TRACKING_URI="http://127.0.0.1:9",
                      MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="1")
    key = {"Authorization": f"Bearer {new_key(env)}"}
    server = Server(["--model", NAME, "--poll-seconds", "0.3"], env, tmp_path / "s.log")
    server.start()
    try:
        for _ in range(100):  # until a poll has failed
            if "registry check failed" in (tmp_path / "s.log").read_text():
                break
            time.sleep(0.1)
        assert "registry check failed" in (tmp_path / "s.log").read_text()
        r = httpx.post(server.url + "/v1/score", json=GOOD, headers=key)
        assert r.status_code == 200 and r.json()["model"]["version"] == v1
        error = httpx.get(server.url + "/ready").json()["error"]
        assert "unreachable" in error and "127.0.0.1:9" in error  # the cause, not a class name
        # admin calls that need the registry: 503 (not a refusal, not a 500), still serving
        admin = {"Authorization": f"Bearer {new_key(env, '--admin')}"}
        for method, path in (("GET", "/v1/admin/versions"), ("POST", "/v1/admin/rollback")):
            r = httpx.request(method, server.url + path, headers=admin, timeout=30)
            assert r.status_code == 503, (path, r.text)
            assert "unreachable" in r.json()["detail"]
        assert httpx.post(server.url + "/v1/score", json=GOOD, headers=key).status_code == 200
    finally:
        server.stop()
