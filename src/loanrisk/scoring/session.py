"""How a version's files become an onnxruntime session: the session options the service runs
with, and the version's files read once (the bytes checked are the bytes parsed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnxruntime as ort

from loanrisk.errors import ModelLoadError


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
