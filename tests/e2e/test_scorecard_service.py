"""A scorecard served for real: uvicorn on a free port, POST /v1/applications, the stored
decision; its reasons are the attributes furthest below their maximum points, as the graph's own
"points" output (read here with onnxruntime alone) states them. Batch scoring and MLflow's
pyfunc flavour give the same reasons."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from scorecard_factory import build_scorecard_dir  # noqa: E402
from service_proc import Server, cli, new_key, service_env  # noqa: E402

APPLICANTS = [{"income": 15000.0, "dti": 38.0, "purpose": "debt"},
              {"income": 90000.0, "dti": None, "purpose": "other"}]


def _points_order(model: Path, record: dict[str, Any]) -> list[str]:
    """The attributes below their maximum, furthest first, from the graph alone."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model / "model.onnx"), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    names = json.loads(meta["points_attributes"])
    maximum = np.array(json.loads(meta["points_max"]))
    feed = {"income": np.array([[record["income"]]], dtype=np.float32),
            "dti": np.array([[np.nan if record["dti"] is None else record["dti"]]],
                            dtype=np.float32),
            "purpose": np.array([[record["purpose"]]], dtype=object)}
    points = sess.run(["points"], feed)[0][0]
    short = maximum - points
    return [names[j] for j in np.argsort(-short, kind="stable") if short[j] > 1e-5]


def test_a_scorecard_decision_gives_its_points_reasons(tmp_path: Path) -> None:
    env = service_env(tmp_path / "home")
    model = build_scorecard_dir(tmp_path / "model")
    words = {"income": "Income", "dti": "Debt-to-income ratio", "purpose": "Purpose of the loan"}
    key = new_key(env, "--channel", "web")
    server = Server(["--model-dir", str(model)], env, tmp_path / "s.log")
    server.start()
    served: list[list[str]] = []
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for i, applicant in enumerate(APPLICANTS):
                r = c.post("/v1/applications", json=applicant,
                           headers={"Authorization": f"Bearer {key}",
                                    "Idempotency-Key": f"sc-{i}"})
                assert r.status_code == 201, r.text
                body = r.json()
                served.append(body["reasons"])
                order = _points_order(model, applicant)
                assert body["reasons"], body
                assert [next(a for a, w in words.items() if reason.startswith(w))
                        for reason in body["reasons"]] == order[:len(body["reasons"])]
                stored = c.get(f"/v1/applications/{body['id']}",
                               headers={"Authorization": f"Bearer {key}"})
                assert stored.status_code == 200 and stored.json()["reasons"] == body["reasons"]
            ready = c.get("/ready").json()
            assert "scorecard" in json.dumps(ready)
    finally:
        server.stop()
    assert served[0][0] == "Income is low" and "Debt-to-income ratio (not provided)" in served[1]
    # batch scoring: the same decisions and reasons
    data = tmp_path / "apps.csv"
    pd.DataFrame(APPLICANTS).to_csv(data, index=False)
    out = tmp_path / "out.parquet"
    cli("score", str(data), "--out", str(out), "--model-dir", str(model), "-q", env=env)
    batch = pd.read_parquet(out)
    assert [r.split("; ") for r in batch["reasons"]] == served
    # MLflow's pyfunc flavour loads the version with the service's scorer
    from loanrisk.registry.pyfunc import _load_pyfunc

    frame = _load_pyfunc(str(model)).predict(pd.DataFrame(APPLICANTS))
    assert [list(r) for r in frame["reasons"]] == served
