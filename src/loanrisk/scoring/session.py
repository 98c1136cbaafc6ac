"""The one way loanrisk runs a graph: onnxruntime sessions as the service runs them
(:func:`serving_session`), a version's files read once (the bytes checked are the bytes parsed),
and :class:`GraphRunner` for frames of raw attributes (learn and the promotion gate)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from loanrisk.errors import ModelLoadError

if TYPE_CHECKING:
    import pandas as pd

_ORT_TYPES = {"tensor(float)": "float", "tensor(string)": "string"}


def serving_session(graph: Path | bytes) -> ort.InferenceSession:
    """An onnxruntime session set up as the service runs it: CPU, one thread, all graph
    optimisations. ModelLoadError when onnxruntime cannot load the graph."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # one application is tiny: threads cost more than they give
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(graph if isinstance(graph, bytes) else str(graph),
                                    sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        where = "the graph" if isinstance(graph, bytes) else str(graph)
        raise ModelLoadError(f"{where}: onnxruntime cannot load it ({exc})") from exc


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path}: missing; a model version directory needs model.onnx, "
                             "manifest.json and schema.json") from exc
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot be read ({type(exc).__name__})") from exc


def parse_json(path: Path, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ModelLoadError(f"{path}: not a JSON object")
    return doc


class GraphRunner:
    """One loanrisk graph on onnxruntime, run on a frame of raw attributes: the runner of learn
    (parity, evaluation, monotonicity) and of the promotion gate. Its session is the service's
    (:func:`serving_session`), so every probability loanrisk reports comes from the same kind of
    session that serves."""

    def __init__(self, model: bytes | str | Path) -> None:
        if isinstance(model, str | Path):
            model = Path(model).read_bytes()
        self.model_bytes: bytes = bytes(model)
        self.session = serving_session(self.model_bytes)
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
        return hashlib.sha256(self.model_bytes).hexdigest()

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Probabilities (len(df), n_classes) as float64.

        Raises DataError naming an input attribute that ``df`` lacks.
        """
        from loanrisk.features import frame_to_onnx_feed

        feed = frame_to_onnx_feed(df, self.input_types)
        out = self.session.run(["probabilities"], feed)[0]
        return np.asarray(out, dtype=np.float64)
