"""One ONNX graph per model: raw attributes in, preprocessing inside, "probabilities" out.

This module stays light: ``onnx`` is imported inside :func:`build_graph` only, and nothing here
imports torch, LightGBM or scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import onnx

    from loanrisk.features import Preprocessor
    from loanrisk.models import LoanModel

PROBABILITIES = "probabilities"
_ORT_TYPES = {"tensor(float)": "float", "tensor(string)": "string"}


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


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class OnnxModel:
    """An onnxruntime session on one loanrisk graph (bytes, or a path to model.onnx)."""

    def __init__(self, model: bytes | str | Path) -> None:
        import onnxruntime as ort

        if isinstance(model, str | Path):
            model = Path(model).read_bytes()
        self.model_bytes: bytes = bytes(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.model_bytes, sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.input_types: dict[str, str] = {}
        for inp in self.session.get_inputs():
            if inp.type not in _ORT_TYPES:
                raise ValueError(f"graph input {inp.name!r} has type {inp.type}; loanrisk graphs "
                                 "take float or string inputs")
            self.input_types[inp.name] = _ORT_TYPES[inp.type]
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, str] = dict(meta)
        self.classes: list[str] | None = (json.loads(meta["classes"]) if "classes" in meta
                                          else None)

    @property
    def input_names(self) -> list[str]:
        """The raw attribute names the graph takes, in input order."""
        return list(self.input_types)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the serialized graph."""
        return sha256_bytes(self.model_bytes)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Probabilities (len(df), n_classes) as float64.

        Raises DataError naming an input attribute that ``df`` lacks.
        """
        from loanrisk.features import frame_to_onnx_feed

        feed = frame_to_onnx_feed(df, self.input_types)
        out = self.session.run([PROBABILITIES], feed)[0]
        return np.asarray(out, dtype=np.float64)


def parity(onnx_model: OnnxModel, preprocessor: Preprocessor, model: Any,
           df: pd.DataFrame) -> float:
    """Largest absolute difference between the graph's and the Python model's probabilities."""
    if len(df) == 0:
        return 0.0
    ours = np.asarray(model.predict_proba(preprocessor.transform(df)), dtype=np.float64)
    theirs = onnx_model.predict_proba(df)
    return float(np.max(np.abs(ours - theirs)))
