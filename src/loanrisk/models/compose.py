"""Inline one hand-written model graph into another: how ensembles and calibrators stay ONE graph.

A loanrisk model graph takes "features" [N, F] and gives one output. ``inline`` copies its nodes
and initializers with every internal name prefixed, its input renamed to the tensor that feeds it
and its output renamed to the tensor the caller wants, so several members can sit side by side.
"""

from __future__ import annotations

from typing import Any

import onnx


def inline(model: onnx.ModelProto, *, prefix: str, feed: str,
           out: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """(nodes, initializers) of ``model``'s graph, input -> ``feed``, output -> ``out``.

    Raises ValueError for a graph with other than one input and one output.
    """
    g = model.graph
    if len(g.input) != 1 or len(g.output) != 1:
        raise ValueError(f"can only inline a graph with one input and one output, "
                         f"not {[i.name for i in g.input]} -> {[o.name for o in g.output]}")
    mapping = {g.input[0].name: feed, g.output[0].name: out}

    def rename(name: str) -> str:
        return mapping.get(name, f"{prefix}{name}") if name else name

    inits: list[onnx.TensorProto] = []
    for t in g.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        copy.name = rename(t.name)
        inits.append(copy)
    nodes: list[onnx.NodeProto] = []
    for n in g.node:
        node = onnx.NodeProto()
        node.CopyFrom(n)
        del node.input[:]
        node.input.extend(rename(x) for x in n.input)
        del node.output[:]
        node.output.extend(rename(x) for x in n.output)
        if n.name:
            node.name = f"{prefix}{n.name}"
        nodes.append(node)
    return nodes, inits


def average_nodes(members: list[Any], weights: list[float], *, n_features: int, feed: str,
                  out: str, prefix: str = "") -> tuple[list[onnx.NodeProto],
                                                       list[onnx.TensorProto]]:
    """Nodes computing ``out = sum_i weights[i] * member_i(feed)`` (each member's to_onnx)."""
    from onnx import helper

    from loanrisk.onnx_utils import const

    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    terms = []
    for i, (m, w) in enumerate(zip(members, weights, strict=True)):
        n, t = inline(m.to_onnx(n_features), prefix=f"{prefix}m{i}/", feed=feed,
                      out=f"{prefix}m{i}_p")
        nodes += n
        inits += t
        inits.append(const(f"{prefix}w{i}", [[w]]))
        nodes.append(helper.make_node("Mul", [f"{prefix}m{i}_p", f"{prefix}w{i}"],
                                      [f"{prefix}m{i}_wp"]))
        terms.append(f"{prefix}m{i}_wp")
    nodes.append(helper.make_node("Sum", terms, [out]))
    return nodes, inits
