"""The decision service for real: uvicorn on a free port, the CLI, SIGKILL durability."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import BAD, GOOD, build_model_dir  # noqa: E402
from service_proc import Server, cli, new_key, service_env  # noqa: E402


def test_serve_end_to_end_export_sql(tmp_path: Path) -> None:
    env = service_env(tmp_path / "home")
    model = build_model_dir(tmp_path / "model")
    key = new_key(env, "--channel", "web")
    admin = new_key(env, "--channel", "call_center", "--admin")
    server = Server(["--model-dir", str(model), "--log-level", "info"], env, tmp_path / "s.log")
    took = server.start()
    assert took < 10
    h = {"Authorization": f"Bearer {key}", "Idempotency-Key": "7f3a9c"}
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            r = c.post("/v1/applications", json=BAD, headers=h)
            assert r.status_code == 201, r.text
            assert r.json()["decision"] == "decline" and r.json()["reasons"]
            again = c.post("/v1/applications", json=BAD, headers=h)
            assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
            app_id = r.json()["id"]
            assert c.post(f"/v1/applications/{app_id}/outcome", json={"outcome": "bad"},
                          headers=h).status_code == 201
            assert c.post("/v1/applications", json={**GOOD, "income": -1},
                          headers={"Authorization": f"Bearer {key}"}).status_code == 422
            reload = c.post("/v1/admin/reload", headers={"Authorization": f"Bearer {admin}"})
            assert reload.status_code == 200 and reload.json()["ready"]
            assert "loanrisk_model_info" in c.get("/metrics").text
    finally:
        server.stop()
    log = (tmp_path / "s.log").read_text()
    assert key not in log and admin not in log  # privacy: no keys...
    assert "15000" not in log and "debt" not in log  # ...and no attribute values in logs
    assert "1 applications and 1 outcomes" in cli("export", env=env)
    out = cli("sql", "SELECT decision, count(*) AS n FROM applications GROUP BY 1", "--json",
              env=env)
    assert '"decision": "decline"' in out and '"n": 1' in out


def test_durability_under_sigkill(tmp_path: Path) -> None:
    """Kill -9 the server several times while a client submits: every 201 is stored, once."""
    env = service_env(tmp_path / "home", LOANRISK_RATE_LIMIT_PER_MINUTE="100000")
    model = build_model_dir(tmp_path / "model")
    key = new_key(env, "--channel", "mobile")
    server = Server(["--model-dir", str(model)], env, tmp_path / "s.log")
    server.start()
    acked: dict[str, str] = {}  # idempotency key -> application id
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=5) as c:
            i = 0
            while not stop.is_set():
                idem = f"k{i}-{uuid.uuid4().hex[:6]}"
                body = {**(GOOD if i % 2 else BAD), "external_ref": idem}
                while not stop.is_set():  # retry the same key until it is acknowledged
                    try:
                        r = c.post(server.url + "/v1/applications", json=body,
                                   headers={"Authorization": f"Bearer {key}",
                                            "Idempotency-Key": idem})
                    except httpx.HTTPError:
                        time.sleep(0.01)
                        continue
                    if r.status_code in (200, 201):
                        prior = acked.setdefault(idem, r.json()["id"])
                        assert prior == r.json()["id"]
                        break
                    time.sleep(0.01)
                i += 1

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(3):
        time.sleep(0.7)
        server.kill()
        server.start()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(10)
    server.stop()
    assert len(acked) > 20
    from loanrisk.store import Store

    store = Store(f"sqlite:///{tmp_path / 'home' / 'loanrisk.db'}")
    with store.session() as s:
        from sqlalchemy import select

        from loanrisk.store.tables import Application

        rows = list(s.execute(select(Application.id, Application.idempotency_key)))
    store.close()
    stored = {str(r.id): r.idempotency_key for r in rows}
    assert len({r.idempotency_key for r in rows}) == len(rows)  # none twice
    for idem, app_id in acked.items():  # every acknowledged application is there
        assert stored.get(app_id) == idem
