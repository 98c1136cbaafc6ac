"""One ONNX graph per model: raw attributes in, preprocessing inside, "probabilities" out.

This module stays light: ``onnx`` is imported inside :func:`build_graph` only, and nothing here
imports torch, LightGBM or scikit-learn.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loanrisk.integrity import sha256_bytes as sha256_bytes  # re-exported for learn
from loanrisk.scoring.session import GraphRunner

if TYPE_CHECKING:
    import onnx

    from loanrisk.features import Preprocessor
    from loanrisk.models import LoanModel

PROBABILITIES = "probabilities"
OnnxModel = GraphRunner  # learn's name for the one runner (parity, evaluation, monotonicity)


def build_graph(preprocessor: Preprocessor, model: LoanModel, *,
                classes: list[str]) -> onnx.ModelProto:
    """The merged, checked graph of ``preprocessor`` then ``model``.

    Its metadata_props hold "classes" and "feature_names" (JSON lists) and the model's name.
    Raises ValueError when the model's output width is not ``len(classes)``.
    """
    import onnx

    from loanrisk.onnx_utils import merge

    pre_graph = preprocessor.onnx_graph()
    model_graph = model.to_onnx(preprocessor.n_features_out_)
    dims = model_graph.graph.output[0].type.tensor_type.shape.dim
    if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value != len(classes):
        raise ValueError(f"model {model.name!r} outputs {dims[1].dim_value} columns for "
                         f"{len(classes)} classes")
    merged = merge(pre_graph, model_graph)
    merged.graph.name = f"loanrisk_{model.name}"
    merged.graph.doc_string = (f"loanrisk {model.name}: raw attributes -> probabilities of "
                               f"{', '.join(classes)}")
    meta = {"classes": json.dumps(list(classes)),
            "feature_names": json.dumps(preprocessor.feature_names_),
            "model": model.name,
            "inputs": json.dumps(preprocessor.input_types_)}
    for key, value in meta.items():
        merged.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(merged, full_check=True)
    return merged


PARITY_ROWS = 2_000


def parity(onnx_model: OnnxModel, preprocessor: Preprocessor, model: Any,
           df: pd.DataFrame) -> float:
    """Largest absolute difference between the graph's and the Python model's probabilities,
    on at most ``PARITY_ROWS`` rows spread evenly over ``df`` (a full book's evaluation split
    would only repeat the same arithmetic)."""
    if len(df) == 0:
        return 0.0
    if len(df) > PARITY_ROWS:
        df = df.iloc[np.linspace(0, len(df) - 1, PARITY_ROWS).astype(np.int64)]
    ours = np.asarray(model.predict_proba(preprocessor.transform(df)), dtype=np.float64)
    theirs = onnx_model.predict_proba(df)
    return float(np.max(np.abs(ours - theirs)))
