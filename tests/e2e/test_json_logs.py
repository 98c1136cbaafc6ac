"""LOANRISK_LOG_FORMAT=json (issue 18): every line `loanrisk serve` logs is one JSON object with
time, level, logger, request id and message, uvicorn's own lines included, and none carries a
request value."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import GOOD, build_model_dir  # noqa: E402
from service_proc import LOANRISK, free_port, new_key, service_env  # noqa: E402


def test_json_log_lines(tmp_path: Path) -> None:
    env = service_env(tmp_path / "home", LOANRISK_LOG_FORMAT="json")
    key = {"Authorization": f"Bearer {new_key(env, '--channel', 'web')}"}
    admin = {"Authorization": f"Bearer {new_key(env, '--admin')}"}
    model = build_model_dir(tmp_path / "model")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    err = tmp_path / "stderr.log"
    with open(err, "wb") as out:
        proc = subprocess.Popen([LOANRISK, "serve", "--model-dir", str(model), "--port",
                                 str(port), "--log-level", "info"], env=env,
                                stdout=subprocess.DEVNULL, stderr=out, start_new_session=True)
    canary = "CANARYJSONLOG7f3a"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/ready", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        r = httpx.post(url + "/v1/applications", headers={**key, "X-Request-ID": "json-1"},
                       json={**GOOD, "applicant_id": canary, "external_ref": canary})
        assert r.status_code == 201, r.text
        bad = httpx.post(url + "/v1/applications", headers={**key, "X-Request-ID": "json-2"},
                         json={**GOOD, "income": canary})
        assert bad.status_code == 422
        reload = httpx.post(url + "/v1/admin/reload", headers={**admin, "X-Request-ID": "json-3"})
        assert reload.status_code == 200  # logs "admin reload by key ..." with its request id
    finally:
        proc.terminate()
        proc.wait(15)
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    assert lines
    docs = [json.loads(line) for line in lines]  # every line is one JSON object
    for d in docs:
        assert {"time", "level", "logger", "request_id", "message"} <= set(d), d
    assert any(d["logger"].startswith("uvicorn") for d in docs)  # uvicorn's own lines too
    assert any(d["request_id"] == "json-3" and "reload" in d["message"] for d in docs), docs
    assert canary not in err.read_text()
