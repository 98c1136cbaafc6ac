"""A shared MLflow tracking server by URL (`mlflow server`, for real): what one machine learns and
promotes, another lists and serves; the serving process follows the champion alias as it moves.

Two loanrisk homes stand for two machines; they share nothing but the server's URL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_proc import Server, cli, free_port, new_key, service_env

pytestmark = pytest.mark.slow
NAME = "lending-club-default"


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` with a SQLite backend and its own artifact store, on a free port."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow = str(Path(sys.executable).parent / "mlflow")
    log = open(root / "server.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((root / "server.log").read_text()[-2000:])
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            raise TimeoutError("mlflow server did not start in 90 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _ready_version(server: Server) -> int | None:
    body = httpx.get(server.url + "/ready", timeout=5).json()
    return (body.get("model") or {}).get("version")


def test_learn_on_one_machine_serve_on_another(tracking_server: str, tmp_path: Path) -> None:
    trainer = service_env(tmp_path / "trainer", LOANRISK_TRACKING_URI=tracking_server)
    edge = service_env(tmp_path / "edge", LOANRISK_TRACKING_URI=tracking_server,
                       LOANRISK_POLL_SECONDS="0.5")
    common = ["--dataset", NAME, "--sample", "3000", "--quiet"]
    cli("learn", *common, "--models", "majority,gbdt", env=trainer)
    cli("learn", *common, "--models", "majority,linear", "--no-promote", env=trainer)

    # the other machine sees the versions and the alias the trainer set: they live on the server
    listed = cli("models", "list", env=edge)
    assert "champion" in listed and "gbdt" in listed and "linear" in listed, listed
    assert not (tmp_path / "edge" / "mlflow.db").exists()  # nothing local to it

    key = new_key(edge, "--channel", "web")
    server = Server(["--model", NAME], edge, tmp_path / "serve.log")
    server.start()
    try:
        assert _ready_version(server) == 1
        # the trainer flips the switch (forced past the gate: v2 is the weaker model) ...
        out = cli("promote", NAME, "2", "--force", env=trainer)
        assert "promoted" in out
        # ... and the serving process on the other machine follows the alias by itself
        deadline = time.monotonic() + 30
        while _ready_version(server) != 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _ready_version(server) == 2
        manifest = json.loads((tmp_path / "edge" / "serving" / NAME / "2" / "manifest.json")
                              .read_text())  # the version's files, fetched from the server
        r = httpx.post(server.url + "/v1/applications", json=manifest["golden"]["inputs"][0],
                       headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 201, r.text
        assert r.json()["model"]["version"] == 2 and r.json()["model"]["name"] == NAME
        cli("rollback", NAME, env=trainer)
        deadline = time.monotonic() + 30
        while _ready_version(server) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _ready_version(server) == 1
    finally:
        server.stop()
