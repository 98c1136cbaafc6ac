"""Small helpers to write ONNX graphs by hand with one consistent opset, and to join two graphs.

Every graph loanrisk writes uses the default domain at opset 17, ``ai.onnx.ml`` at opset 3 and
IR version 9, which onnxruntime has read since 1.15. ``onnx`` is a training-time dependency:
import this module only where graphs are built, never on the serving path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, ValueInfoProto, helper, numpy_helper

OPSET = 17
ML_OPSET = 3
IR_VERSION = 9
ML_DOMAIN = "ai.onnx.ml"
FEATURES = "features"
PROBABILITIES = "probabilities"
BATCH = "N"  # symbolic name of the batch dimension


def opset_imports() -> list[onnx.OperatorSetIdProto]:
    """The opsets every loanrisk graph declares (default 17, ai.onnx.ml 3)."""
    return [helper.make_opsetid("", OPSET), helper.make_opsetid(ML_DOMAIN, ML_OPSET)]


def const(name: str, value: Any, dtype: Any = np.float32) -> TensorProto:
    """An initializer named ``name`` holding ``value`` as a numpy array of ``dtype``."""
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name=name)


def tensor_input(name: str, elem: int, n_cols: int | None) -> ValueInfoProto:
    """A value info of shape [N, n_cols] (``elem`` is a TensorProto type such as FLOAT)."""
    return helper.make_tensor_value_info(name, elem, [BATCH, n_cols])


def float_input(name: str, n_cols: int | None) -> ValueInfoProto:
    """A float tensor value info of shape [N, n_cols]."""
    return tensor_input(name, TensorProto.FLOAT, n_cols)


def make_model(nodes: Sequence[onnx.NodeProto], *, name: str,
               inputs: Sequence[ValueInfoProto], outputs: Sequence[ValueInfoProto],
               initializers: Sequence[TensorProto] = (), doc: str = "") -> ModelProto:
    """A checked model with the loanrisk opsets and IR version.

    Raises ``onnx.checker.ValidationError`` when the graph is malformed.
    """
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs),
                              initializer=list(initializers), doc_string=doc)
    model = helper.make_model(graph, opset_imports=opset_imports(), producer_name="loanrisk")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def normalise(model: ModelProto) -> ModelProto:
    """Set a converted model's IR version and opsets to ours (so two graphs can be merged).

    Only valid for graphs converted with ``target_opset`` no higher than ours.
    """
    model.ir_version = IR_VERSION
    versions = {op.domain: op.version for op in model.opset_import}
    versions[""] = max(versions.get("", OPSET), OPSET)
    versions[ML_DOMAIN] = max(versions.get(ML_DOMAIN, ML_OPSET), ML_OPSET)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    return model


def rename_output(model: ModelProto, old: str, new: str) -> ModelProto:
    """Rename the graph output ``old`` to ``new`` wherever it is produced or listed."""
    if old == new:
        return model
    for node in model.graph.node:
        for i, out in enumerate(node.output):
            if out == old:
                node.output[i] = new
    for out in model.graph.output:
        if out.name == old:
            out.name = new
    return model


def merge(pre: ModelProto, model: ModelProto) -> ModelProto:
    """One graph: ``pre``'s raw inputs -> "features" -> ``model`` -> "probabilities".

    Internal names get a prefix ("pre/" and "model/") so the two graphs never clash; the raw
    input names and the output names are kept. ``model`` must have an input "features"; its
    first output is renamed "probabilities" if it is called otherwise, and any further output
    (the scorecard's "points") stays an output of the merged graph, with ``model``'s metadata.
    """
    from onnx import compose

    pre = normalise(onnx.ModelProto.FromString(pre.SerializeToString()))
    model = normalise(onnx.ModelProto.FromString(model.SerializeToString()))
    if not model.graph.output:
        raise ValueError("the model graph has no output")
    extra = [o.name for o in model.graph.output[1:]]
    if PROBABILITIES in extra or FEATURES in extra:
        raise ValueError(f"the model graph's further outputs {extra} may not be called "
                         f"{PROBABILITIES!r} or {FEATURES!r}")
    rename_output(model, model.graph.output[0].name, PROBABILITIES)
    pre = compose.add_prefix(pre, "pre/", rename_inputs=False, rename_outputs=False)
    model = compose.add_prefix(model, "model/", rename_inputs=False, rename_outputs=False)
    merged = compose.merge_models(pre, model, io_map=[(FEATURES, FEATURES)],
                                  producer_name="loanrisk")
    merged.ir_version = IR_VERSION
    have = {prop.key for prop in merged.metadata_props}  # merge_models copies them (onnx 1.x)
    for prop in model.metadata_props:
        if prop.key not in have:
            merged.metadata_props.add(key=prop.key, value=prop.value)
    onnx.checker.check_model(merged)
    return merged
