"""MLflow's ``python_function`` flavour for a loanrisk model version.

Every registered version carries an ``MLmodel`` file beside its ONNX graph, schema and manifest,
so MLflow's own tools use it as it is: ``mlflow.pyfunc.load_model("models:/NAME@champion")``,
``mlflow models serve``, the signature view, and the platforms that serve MLflow models. The
flavour names this module as its ``loader_module``: :func:`_load_pyfunc` loads the version with
loanrisk's :class:`~loanrisk.scoring.scorer.Scorer` (the graph's SHA-256 and golden inputs
checked, as the service does), and :meth:`LoanriskPyfunc.predict` validates each row with the
service's request model and scores it with the same scorer, so decisions, probabilities, tiers
and reasons are the ones ``/v1/score`` gives.

:func:`write_pyfunc` writes ``MLmodel``, ``input_example.json``, ``requirements.txt`` and
``python_env.yaml`` into a version directory before it is logged (the integrity record covers
them like every other file). It needs MLflow (``loanrisk[registry]``); loading needs pandas,
which MLflow brings.
"""

from __future__ import annotations

import json
import math
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from loanrisk.errors import DataError
from loanrisk.scoring.scorer import Decision, Scorer
from loanrisk.scoring.validation import RequestValidator

LOADER_MODULE = "loanrisk.registry.pyfunc"
PYFUNC_FILES = ("MLmodel", "input_example.json", "requirements.txt", "python_env.yaml")
EXAMPLE_ROWS = 2


def probability_column(cls: str) -> str:
    """The output column holding one class's probability."""
    return f"probability_{cls}"


def _clean(value: Any) -> Any:
    """A pandas cell as the JSON value /v1/score would receive (NaN and NaT: None)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    item = getattr(value, "item", None)  # numpy scalars -> Python
    if callable(item) and not isinstance(value, str | bytes):
        try:
            value = item()
        except (TypeError, ValueError):
            return value
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


class LoanriskPyfunc:
    """What ``mlflow.pyfunc.load_model`` wraps: the version's scorer and request validator."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.validator = RequestValidator(scorer.manifest, scorer.schema)
        self._fields = set(self.validator.model.model_fields)

    def _records(self, model_input: Any) -> list[dict[str, Any]]:
        if hasattr(model_input, "to_dict") and hasattr(model_input, "columns"):  # a DataFrame
            rows = model_input.to_dict(orient="records")
        elif isinstance(model_input, dict):
            rows = [model_input]
        else:
            rows = list(model_input)
        out: list[dict[str, Any]] = []
        errors: list[str] = []
        for i, row in enumerate(rows):
            data = {str(k): _clean(v) for k, v in dict(row).items() if str(k) in self._fields}
            obj, errs = self.validator.validate(data, index=i)
            if errs:
                errors += [f"row {i}: {e.get('field')}: {e.get('msg')}" for e in errs]
            elif obj is not None:
                out.append({k: v for k, v in obj.model_dump().items()})
        if errors:
            raise DataError("invalid applications: " + "; ".join(errors[:20]))
        return out

    def decisions(self, model_input: Any) -> list[Decision]:
        """The scorer's decisions for validated rows (DataError naming every invalid field)."""
        return self.scorer.score(self._records(model_input))

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """One row per application: decision, probability_<class> for each class, risk_score,
        risk_tier and reasons (a list of plain-words strings)."""
        import pandas as pd

        rows = []
        for d in self.decisions(model_input):
            row: dict[str, Any] = {"decision": d.decision}
            row.update({probability_column(c): float(p) for c, p in d.probabilities.items()})
            row.update(risk_score=float(d.risk_score), risk_tier=d.risk_tier,
                       reasons=list(d.reasons))
            rows.append(row)
        columns = (["decision"] + [probability_column(c) for c in self.scorer.classes]
                   + ["risk_score", "risk_tier", "reasons"])
        return pd.DataFrame(rows, columns=columns)


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> LoanriskPyfunc:
    """MLflow's entry point (``loader_module``): the version directory holding ``MLmodel``."""
    return LoanriskPyfunc(Scorer.load(Path(path), warm=False))


def _signature(manifest: dict[str, Any], schema: dict[str, Any]) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    nullable = set(manifest.get("nullable") or [])
    attrs = {a["name"]: a for a in schema.get("attributes", [])}
    inputs: list[Any] = [ColSpec("string" if manifest["inputs"][f] == "string" else "double", f,
                      required=f not in nullable) for f in manifest["features"]]
    for name in RequestValidator(manifest, schema).model.model_fields:
        a = attrs.get(name)
        if name not in manifest["features"] and a is not None and a.get("type") == "text":
            inputs.append(ColSpec("string", name, required=False))
    outputs: list[Any] = [ColSpec("string", "decision")]
    outputs += [ColSpec("double", probability_column(str(c))) for c in manifest["classes"]]
    outputs += [ColSpec("double", "risk_score"), ColSpec("string", "risk_tier"),
                ColSpec(Array("string"), "reasons")]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def write_pyfunc(version_dir: Path) -> list[str]:
    """Write the pyfunc flavour's files into ``version_dir`` (which holds model.onnx,
    manifest.json and schema.json); the names written."""
    import mlflow.pyfunc
    from mlflow.models import Model

    manifest = json.loads((version_dir / "manifest.json").read_text())
    schema = json.loads((version_dir / "schema.json").read_text())
    features = list(manifest["features"])
    golden = ((manifest.get("golden") or {}).get("inputs") or [])[:EXAMPLE_ROWS]
    if not golden:
        golden = [dict(zip(features, [(manifest.get("reference") or {}).get(f)
                                      for f in features], strict=True))]
    example = {"columns": features,
               "data": [[_clean(row.get(f)) for f in features] for row in golden]}
    (version_dir / "input_example.json").write_text(json.dumps(example, indent=1) + "\n")
    pins = [f"loanrisk[registry]=={_dist_version('loanrisk') or '0'}"]
    mlflow_version = _dist_version("mlflow-skinny") or _dist_version("mlflow")
    if mlflow_version:
        pins.append(f"mlflow-skinny=={mlflow_version}")
    (version_dir / "requirements.txt").write_text("\n".join(pins) + "\n")
    (version_dir / "python_env.yaml").write_text(
        f"python: {platform.python_version()}\nbuild_dependencies:\n- pip\n"
        "dependencies:\n- -r requirements.txt\n")
    model = Model(signature=_signature(manifest, schema),
                  saved_input_example_info={"artifact_path": "input_example.json",
                                            "type": "dataframe", "pandas_orient": "split"},
                  metadata={"loanrisk.sha256": str(manifest.get("sha256", "")),
                            "loanrisk.model": str(manifest.get("model", ""))})
    mlflow.pyfunc.add_to_model(model, loader_module=LOADER_MODULE,
                               python_env="python_env.yaml")
    model.save(str(version_dir / "MLmodel"))
    return list(PYFUNC_FILES)
