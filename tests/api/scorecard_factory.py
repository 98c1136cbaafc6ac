"""A small real scorecard version directory (trained in a second, no `learn` run): the schema of
model_factory (income, dti, purpose), a synthetic table where low income, high dti and the
purpose "debt" raise risk, the scorecard's one graph (preprocessing inside, "points" output) and
a manifest in the "Model version artifact" format."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from model_factory import SCHEMA_ATTRS

SCHEMA_MONOTONE = {"income": -1, "dti": 1}


def table(n: int = 3000, seed: int = 0, n_classes: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(mean=np.log(50000), sigma=0.5, size=n)
    dti = rng.uniform(0, 40, size=n)
    purpose = rng.choice(["car", "debt", "other"], size=n, p=[0.4, 0.4, 0.2])
    latent = (-1.5 * np.log(income / 50000) + 0.06 * (dti - 20) + 0.8 * (purpose == "debt")
              + rng.logistic(size=n))
    dti = np.where(rng.random(n) < 0.08, np.nan, dti)
    classes = ["good", "bad"] if n_classes == 2 else ["A", "B", "C"]
    cuts = np.quantile(latent, [0.85] if n_classes == 2 else [0.4, 0.8])
    y = np.asarray(classes, dtype=object)[np.searchsorted(cuts, latent)]
    target = "Class" if n_classes == 2 else "grade"
    return pd.DataFrame({"income": income, "dti": dti, "purpose": purpose, target: y})


def schema_dict(name: str, n_classes: int = 2) -> dict[str, Any]:
    attrs = [{**a, "monotone": SCHEMA_MONOTONE.get(a["name"], 0)} for a in SCHEMA_ATTRS]
    binary = n_classes == 2
    return {"format": "loanrisk-schema/1", "name": name, "target": "Class" if binary else "grade",
            "classes": ["good", "bad"] if binary else ["A", "B", "C"],
            "positive_class": "bad" if binary else None, "excluded": [],
            "primary_metric": "roc_auc", "attributes": attrs}


def build_scorecard_dir(path: Path, *, name: str = "fixture-scorecard", n_classes: int = 2,
                        **overrides: Any) -> Path:
    """Train a scorecard on :func:`table` and write its version directory at ``path``."""
    from loanrisk import manifest as mf
    from loanrisk.features import Preprocessor
    from loanrisk.learn.export import OnnxModel, build_graph
    from loanrisk.learn.stages import monotone_vector, scorecard_columns
    from loanrisk.models import make_model
    from loanrisk.schema import Schema

    schema = Schema.from_dict(schema_dict(name, n_classes))
    df = table(n_classes=n_classes)
    attrs = schema.feature_attributes()
    pre = Preprocessor(attrs).fit(df)
    y = np.array([schema.classes.index(v) for v in df[schema.target]])
    model = make_model("scorecard", seed=0, task=schema.task, columns=scorecard_columns(pre),
                       monotone=monotone_vector(pre, attrs), **overrides)
    X = pre.transform(df)
    model.fit(X, y, X_val=X[:50], y_val=y[:50], n_classes=n_classes)
    graph = build_graph(pre, model, classes=schema.classes).SerializeToString()
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.onnx").write_bytes(graph)
    schema.save(path / "schema.json")
    names = [a.name for a in attrs]
    golden = df.head(5)
    manifest = {
        "name": name, "version": None, "model": "scorecard", "task": schema.task,
        "classes": schema.classes, "positive_class": schema.positive_class,
        "target": schema.target, "features": names, "inputs": dict(pre.input_types_),
        "sha256": hashlib.sha256(graph).hexdigest(),
        "metrics": {"roc_auc": 0.7}, "primary_metric": "roc_auc",
        "reference": mf.reference_values(df, pre.input_types_),
        "typical": mf.typical_values(df, pre.input_types_),
        "ranges": mf.ranges(df, pre.input_types_),
        "categories": mf.categories(df, pre.input_types_),
        "nullable": mf.missing_seen(df, pre.input_types_),
        "golden": {"inputs": mf.records(golden, names),
                   "probabilities": OnnxModel(graph).predict_proba(golden).tolist()},
        "scorecard": {k: v for k, v in model.points_table().items() if k != "bins"},
        "trained_at": "2026-01-01T00:00:00+00:00", "loanrisk_version": "0.1.0",
        "leakage": [], "allow_leaky": False,
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return path
