"""Small hand-made model versions for service tests (no training needed).

``build_model_dir`` writes model.onnx + schema.json + manifest.json in the "Model version
artifact" format: two numeric inputs (income, dti; NaN imputed) and one string input (purpose,
via ai.onnx.ml LabelEncoder) -> a logistic score z -> "probabilities" [N, 2] (binary good/bad)
or [N, 3] (grades A/B/C, softmax of [-z, 0, z]). Swap these for fixtures from a real `learn`
run when convenient: the service only relies on the artifact format.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PURPOSE = {"car": -0.5, "debt": 0.8, "other": 0.2}
# no channel: an application gets its API key's default channel (a key may not name another)
GOOD = {"income": 90000.0, "dti": 8.0, "purpose": "car"}
BAD = {"income": 15000.0, "dti": 38.0, "purpose": "debt"}
SCHEMA_ATTRS = [
    {"name": "income", "type": "numeric", "description": "Yearly income (USD).",
     "reason": "Income is low", "minimum": 0},
    {"name": "dti", "type": "numeric", "description": "Debt-to-income ratio (%).",
     "reason": "Debt-to-income ratio is high"},
    {"name": "purpose", "type": "categorical", "description": "Purpose of the loan.",
     "reason": "", "categories": ["car", "debt", "other"]},
    {"name": "emp_title", "type": "text", "description": "Job title."},
]


def _graph(w_income: float, w_dti: float, bias: float, n_classes: int) -> onnx.ModelProto:
    c = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype=np.float32), name)  # noqa: E731
    inits = [c("ref_income", [[60000.0]]), c("ref_dti", [[15.0]]), c("scale_income", 1e-5),
             c("w_income", w_income), c("w_dti", w_dti), c("bias", bias)]
    nodes = [
        helper.make_node("IsNaN", ["income"], ["income_nan"]),
        helper.make_node("Where", ["income_nan", "ref_income", "income"], ["income_i"]),
        helper.make_node("IsNaN", ["dti"], ["dti_nan"]),
        helper.make_node("Where", ["dti_nan", "ref_dti", "dti"], ["dti_i"]),
        helper.make_node("Mul", ["income_i", "scale_income"], ["inc_s"]),
        helper.make_node("Mul", ["inc_s", "w_income"], ["t1"]),
        helper.make_node("Mul", ["dti_i", "w_dti"], ["t2"]),
        helper.make_node("LabelEncoder", ["purpose"], ["t3"], domain="ai.onnx.ml",
                         keys_strings=list(PURPOSE), values_floats=list(PURPOSE.values()),
                         default_float=0.0),
        helper.make_node("Add", ["t1", "t2"], ["s12"]),
        helper.make_node("Add", ["s12", "t3"], ["s123"]),
        helper.make_node("Add", ["s123", "bias"], ["z"]),
    ]
    if n_classes == 2:
        inits.append(c("one", 1.0))
        nodes += [helper.make_node("Sigmoid", ["z"], ["p_bad"]),
                  helper.make_node("Sub", ["one", "p_bad"], ["p_good"]),
                  helper.make_node("Concat", ["p_good", "p_bad"], ["probabilities"], axis=1)]
    else:
        inits.append(c("spread", [[-1.0, 0.0, 1.0]]))
        nodes += [helper.make_node("Mul", ["z", "spread"], ["logits"]),
                  helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    inputs = [helper.make_tensor_value_info("income", TensorProto.FLOAT, ["N", 1]),
              helper.make_tensor_value_info("dti", TensorProto.FLOAT, ["N", 1]),
              helper.make_tensor_value_info("purpose", TensorProto.STRING, ["N", 1])]
    out = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_classes])
    graph = helper.make_graph(nodes, "fixture", inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def _proba(path: Path, records: list[dict[str, Any]]) -> list[list[float]]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    f = lambda k: np.array([[np.nan if r.get(k) is None else r[k]] for r in records],  # noqa: E731
                           dtype=np.float32)
    feed = {"income": f("income"), "dti": f("dti"),
            "purpose": np.array([[r.get("purpose") or ""] for r in records], dtype=object)}
    return np.asarray(sess.run(["probabilities"], feed)[0], dtype=np.float64).tolist()


def build_model_dir(path: Path, *, name: str = "fixture-default", version: int | None = None,
                    task: str = "binary", w_income: float = -2.0, w_dti: float = 0.15,
                    bias: float = -1.0, auc: float = 0.7) -> Path:
    """Write a servable model version directory at ``path`` and return it."""
    path.mkdir(parents=True, exist_ok=True)
    classes = ["good", "bad"] if task == "binary" else ["A", "B", "C"]
    target = "Class" if task == "binary" else "grade"
    onnx_path = path / "model.onnx"
    onnx_path.write_bytes(_graph(w_income, w_dti, bias, len(classes)).SerializeToString())
    schema = {"format": "loanrisk-schema/1", "name": name, "target": target, "classes": classes,
              "positive_class": "bad" if task == "binary" else None, "excluded": [],
              "primary_metric": "roc_auc", "attributes": SCHEMA_ATTRS}
    (path / "schema.json").write_text(json.dumps(schema, indent=1))
    golden = [{"income": 60000.0, "dti": 10.0, "purpose": "car"},
              {"income": 20000.0, "dti": 35.0, "purpose": "debt"},
              {"income": 45000.0, "dti": None, "purpose": "other"}]
    manifest = {
        "name": name, "version": version, "model": "fixture", "task": task, "classes": classes,
        "positive_class": schema["positive_class"], "target": target,
        "features": ["income", "dti", "purpose"],
        "inputs": {"income": "float", "dti": "float", "purpose": "string"},
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "metrics": {"roc_auc": auc}, "primary_metric": "roc_auc",
        "reference": {"income": 60000.0, "dti": 15.0, "purpose": "car"},
        "ranges": {"income": [8000.0, 400000.0], "dti": [0.0, 40.0]},
        "categories": {"purpose": ["car", "debt", "other"]},
        "nullable": ["dti"],
        "golden": {"inputs": golden, "probabilities": _proba(onnx_path, golden)},
        "trained_at": "2026-01-01T00:00:00+00:00", "loanrisk_version": "0.1.0",
        "leakage": [], "allow_leaky": False,
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return path


def write_eval(path: Path, n: int = 200, seed: int = 0) -> Path:
    """An eval.parquet (features + __y__) so the registry's gate can compare versions."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    income = rng.uniform(10000, 150000, n)
    dti = rng.uniform(0, 40, n)
    purpose = rng.choice(list(PURPOSE), n)
    z = -2.0 * income * 1e-5 + 0.15 * dti + np.vectorize(PURPOSE.get)(purpose) - 1.0
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int)
    pd.DataFrame({"income": income, "dti": dti, "purpose": purpose, "__y__": y}).to_parquet(
        path / "eval.parquet", index=False)
    return path


def register_dir(registry: Any, model_dir: Path, *, name: str) -> int:
    """Log a model dir as an MLflow run's ``loanrisk/`` artifacts and register it; the version."""
    from loanrisk.integrity import digest_files

    client = registry.client
    files = digest_files(model_dir)
    run = client.create_run(registry.experiment_id(name))
    client.log_artifacts(run.info.run_id, str(model_dir), "loanrisk")
    client.set_terminated(run.info.run_id)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    info = registry.register(name=name, run_id=run.info.run_id, model="fixture",
                             sha256=manifest["sha256"], metrics=manifest["metrics"],
                             files=files)
    return int(info.version)


def registry_copy(registry: Any, name: str, version: int) -> Path:
    """The registry's own copy of a version's files (a local artifact store's folder)."""
    from urllib.parse import unquote, urlparse

    info = registry.info(name, version)
    uri = registry.client.get_run(info.run_id).info.artifact_uri
    return Path(unquote(urlparse(uri).path)) / "loanrisk"
