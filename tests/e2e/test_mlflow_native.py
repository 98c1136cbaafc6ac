"""loanrisk as MLflow users expect it, for real: MLflow's own MLFLOW_TRACKING_URI is honoured when
LOANRISK_TRACKING_URI is unset, and every registered version is an MLflow pyfunc model that
`mlflow.pyfunc.load_model("models:/NAME@champion")` and `mlflow models serve` answer with the
decisions `/v1/score` gives.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_proc import Server, cli, free_port, new_key, service_env
from test_shared_registry import tracking_server  # noqa: F401 (a module-scoped fixture)

pytestmark = pytest.mark.slow
NAME = "lending-club-default"
MLFLOW = str(Path(sys.executable).parent / "mlflow")


def _mlflow_env(home: Path, url: str) -> dict[str, str]:
    env = service_env(home, MLFLOW_TRACKING_URI=url)
    env.pop("LOANRISK_TRACKING_URI", None)
    env.pop("LOANRISK_REGISTRY_URI", None)
    return env


@pytest.fixture(scope="module")
def learned(tracking_server: str, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
            ) -> Iterator[tuple[str, dict[str, str], Path]]:
    """`learn` with only MLFLOW_TRACKING_URI set: (server URL, environment, home)."""
    home = tmp_path_factory.mktemp("mlflow-native") / "home"
    env = _mlflow_env(home, tracking_server)
    cli("learn", "--dataset", NAME, "--sample", "600", "--models", "majority,linear", "--quiet",
        env=env)
    yield tracking_server, env, home


def _applications(n: int, version_dir: Path) -> list[dict[str, Any]]:
    """``n`` applications from the bundled table that the version accepts, as JSON bodies
    (missing values left out; a 600-row sample's ranges and categories are narrow)."""
    from loanrisk.datasets import load_bundled
    from loanrisk.scoring.validation import RequestValidator

    manifest = json.loads((version_dir / "manifest.json").read_text())
    validator = RequestValidator(manifest, json.loads((version_dir / "schema.json").read_text()))
    df, _ = load_bundled(NAME)
    out: list[dict[str, Any]] = []
    for r in df[manifest["features"]].tail(4 * n).to_dict(orient="records"):
        body = {k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))}
        if not validator.validate(body)[1]:
            out.append(body)
    assert len(out) >= n
    return out[:n]


def test_learn_registers_on_mlflow_tracking_uri(learned: tuple[str, dict[str, str], Path]
                                                ) -> None:
    from mlflow import MlflowClient

    url, env, home = learned
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    champion = client.get_model_version_by_alias(NAME, "champion")
    assert champion.version == "1"
    from loanrisk.integrity import FILES_TAG

    files = json.loads(champion.tags[FILES_TAG])  # the integrity record covers the flavour
    assert {"MLmodel", "input_example.json", "model.onnx", "manifest.json"} <= set(files)
    assert champion.source.endswith("/loanrisk")  # the directory holding MLmodel
    assert not (home / "mlflow.db").exists()  # nothing went to the local default registry
    doctor = subprocess.run([str(Path(sys.executable).parent / "loanrisk"), "doctor", "--json",
                             "--model", NAME], env=env, capture_output=True, text=True)
    registry = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "registry")
    assert registry["ok"] and "MLFLOW_TRACKING_URI" in registry["detail"], registry


def test_pyfunc_matches_v1_score(learned: tuple[str, dict[str, str], Path], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """load_model and `mlflow models serve` against a real `loanrisk serve`: 100 applications,
    identical decisions, tiers and reasons, probabilities within 1e-6."""
    import mlflow
    import pandas as pd

    url, env, _ = learned
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    apps = _applications(100, Path(mlflow.artifacts.download_artifacts(
        f"models:/{NAME}@champion", dst_path=str(tmp_path / "version"))))
    key = new_key(env, "--channel", "web")
    server = Server(["--model", NAME], env, tmp_path / "serve.log")
    port = free_port()
    log = open(tmp_path / "mlflow-serve.log", "wb")  # noqa: SIM115 (closed below)
    serve = subprocess.Popen(
        [MLFLOW, "models", "serve", "-m", f"models:/{NAME}@champion", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        # MLflow starts `uvicorn` from PATH: the virtual environment's
        env={**env, "MLFLOW_TRACKING_URI": url,
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"},
        stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        server.start()
        answer = httpx.post(server.url + "/v1/score", json=apps, timeout=30,
                            headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        expected = answer.json()

        model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
        loaded = model.predict(pd.DataFrame(apps)).to_dict(orient="records")

        deadline = time.monotonic() + 60
        while True:
            assert serve.poll() is None, (tmp_path / "mlflow-serve.log").read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not start in 60 s"
            time.sleep(0.25)
        served = httpx.post(f"http://127.0.0.1:{port}/invocations", timeout=30,
                            json={"dataframe_records": apps})
        assert served.status_code == 200, served.text
        invoked = served.json()["predictions"]
    finally:
        server.stop()
        serve.terminate()
        try:
            serve.wait(15)
        except subprocess.TimeoutExpired:
            serve.kill()
        log.close()

    for got in (loaded, invoked):
        assert len(got) == len(expected) == 100
        for want, row in zip(expected, got, strict=True):
            assert row["decision"] == want["decision"]
            assert row["risk_tier"] == want["risk_tier"]
            assert list(row["reasons"]) == want["reasons"]
            assert abs(row["risk_score"] - want["risk_score"]) <= 1e-6
            for cls, p in want["probabilities"].items():
                assert abs(row[f"probability_{cls}"] - p) <= 1e-6
