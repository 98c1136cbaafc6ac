"""The scorecard's export: its ONNX graph and its points table (:mod:`loanrisk.models.scorecard`).

The graph bins with the same float32 comparisons as :meth:`ScorecardModel._woe_matrix` and
computes the score and probabilities in double, as numpy does. The points table scales the
score to points: Score = offset + factor * ln(odds good:bad), factor = pdo / ln 2, offset =
base_points - factor * ln(base_odds).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

if TYPE_CHECKING:
    from loanrisk.models.scorecard import ScorecardModel, _Attr

POINTS = "points"  # the graph's second output: each attribute's points, float64 [N, A]


def cat_weights(model: ScorecardModel, n_features: int) -> np.ndarray | None:
    """(n_features, 1) score weights of the one-hot columns (-weight * WoE), or None."""
    cats = [a for a in model.attrs_ if a.value_col is None]
    if not cats:
        return None
    m = np.zeros((n_features, 1))
    for a in cats:
        for (c, _), w in zip(a.onehot, a.woe, strict=True):
            m[c, 0] = -a.weight * w
    return m


def scaling(model: ScorecardModel) -> tuple[float, float, float]:
    """(factor, offset, spread): points = factor * weight * WoE + spread per attribute, and an
    applicant's points add up to offset + factor * ln(odds good:bad)."""
    factor = model.pdo / math.log(2)
    offset = model.base_points - factor * math.log(model.base_odds)
    spread = (offset + factor * float(model.theta_[model.cut_ - 1])) / len(model.attrs_)
    return factor, offset, spread


def graph_order(model: ScorecardModel) -> list[_Attr]:
    """The attributes in the order of the graph's "points" columns: numeric, then categorical."""
    return ([a for a in model.attrs_ if a.value_col is not None]
            + [a for a in model.attrs_ if a.value_col is None])


def _woe_values(a: _Attr) -> list[float]:
    """Every WoE an applicant can get on attribute ``a`` (its missing bin included)."""
    values = [float(w) for w in a.woe]
    if a.value_col is not None and a.missing_col is not None:
        values.append(float(a.woe_missing))
    return values


def _best_range(a: _Attr) -> list[float | None] | None:
    """The raw values of ``a``'s best-scoring bins as [low, high] (None: open or missing), or
    None for a categorical attribute or one whose best bin is "missing"."""
    if a.value_col is None or not len(a.woe):
        return None
    top = max(_woe_values(a))
    best = [i for i, w in enumerate(a.woe) if w >= top]
    if not best:
        return None
    raw = [float(e) * a.scale + a.center for e in a.edges]
    low = raw[best[0] - 1] if best[0] > 0 else None
    high = raw[best[-1]] if best[-1] < len(raw) else None
    return [low, high]


def points_matrix(model: ScorecardModel, X: np.ndarray) -> np.ndarray:
    """(n, n_attributes) points of each row per attribute, in :func:`graph_order`, float64:
    what the graph's "points" output holds."""
    factor, _, spread = scaling(model)
    W = model._woe_matrix(X)
    idx = [model.attrs_.index(a) for a in graph_order(model)]
    weights = np.array([a.weight for a in model.attrs_])
    return np.asarray(W[:, idx] * (factor * weights[idx]) + spread)


def points_metadata(model: ScorecardModel) -> dict[str, str]:
    """What the scorer needs to read reasons off the "points" output (graph metadata_props):
    each column's attribute, its maximum points and the raw range of its best bins."""
    factor, _, spread = scaling(model)
    attrs = graph_order(model)
    maximum = [factor * a.weight * max(_woe_values(a), default=0.0) + spread for a in attrs]
    return {"points_attributes": json.dumps([a.name for a in attrs]),
            "points_max": json.dumps(maximum),
            "points_best": json.dumps([_best_range(a) for a in attrs]),
            "points_scaling": json.dumps({"pdo": model.pdo, "base_points": model.base_points,
                                          "base_odds": model.base_odds})}


def to_onnx(model: ScorecardModel, n_features: int) -> onnx.ModelProto:
    """Graph "features" [N,F] -> "probabilities" [N,C] and "points" [N,A] (double): bin lookups,
    each attribute's points, the score and the cumulative logit.

    The points columns follow :func:`graph_order`; the graph's metadata (see
    :func:`points_metadata`) names them, so the scorer reads reasons off the same run that gives
    the probabilities: no extra rows.
    """
    from onnx import TensorProto, helper

    from loanrisk.onnx_utils import (
        BATCH,
        FEATURES,
        PROBABILITIES,
        const,
        float_input,
        make_model,
    )

    f64 = np.float64
    num = [a for a in model.attrs_ if a.value_col is not None]
    cats = [a for a in model.attrs_ if a.value_col is None]
    nodes: list[Any] = []
    inits: list[Any] = []
    parts: list[str] = []
    if num:
        width = max(1, max(len(a.edges) for a in num))
        edges = np.full((1, len(num), width), np.inf, dtype=np.float32)
        table: list[float] = []
        offsets: list[int] = []
        miss_woe: list[float] = []
        miss_sel = np.zeros((n_features, len(num)))
        for j, a in enumerate(num):
            edges[0, j, :len(a.edges)] = a.edges
            offsets.append(len(table))
            table.extend(a.woe.tolist())
            if a.missing_col is not None:
                miss_sel[a.missing_col, j] = 1.0
            miss_woe.append(a.woe_missing)
        inits += [const("num_cols", [a.value_col for a in num], np.int64),
                  const("edges", edges, np.float32), const("axis2", [2], np.int64),
                  const("offsets", [offsets], np.int64), const("woe_table", table, f64),
                  const("miss_sel", miss_sel, np.float32), const("half", [[0.5]], np.float32),
                  const("miss_woe", [miss_woe], f64)]
        nodes += [
            helper.make_node("Gather", [FEATURES, "num_cols"], ["xn"], axis=1),
            helper.make_node("Unsqueeze", ["xn", "axis2"], ["xn3"]),
            helper.make_node("Greater", ["xn3", "edges"], ["above"]),
            helper.make_node("Cast", ["above"], ["above64"], to=TensorProto.INT64),
            helper.make_node("ReduceSum", ["above64", "axis2"], ["bin"], keepdims=0),
            helper.make_node("Add", ["bin", "offsets"], ["flat"]),
            helper.make_node("Gather", ["woe_table", "flat"], ["woe_bin"], axis=0),
            helper.make_node("MatMul", [FEATURES, "miss_sel"], ["miss_f"]),
            helper.make_node("Greater", ["miss_f", "half"], ["is_miss"]),
            helper.make_node("Where", ["is_miss", "miss_woe", "woe_bin"], ["woe_num"]),
        ]
        parts.append("woe_num")
    if cats:  # each categorical attribute's WoE: its one-hot columns times their WoE
        sel = np.zeros((n_features, len(cats)))
        for j, a in enumerate(cats):
            for (c, _), w in zip(a.onehot, a.woe, strict=True):
                sel[c, j] = w
        inits.append(const("woe_sel", sel, f64))
        nodes += [helper.make_node("Cast", [FEATURES], ["x64"], to=TensorProto.DOUBLE),
                  helper.make_node("MatMul", ["x64", "woe_sel"], ["woe_cat"])]
        parts.append("woe_cat")
    nodes.append(helper.make_node("Concat", parts, ["woe"], axis=1) if len(parts) == 2
                 else helper.make_node("Identity", parts, ["woe"]))
    factor, _, spread = scaling(model)
    weights = np.array([a.weight for a in graph_order(model)])
    inits += [const("w_neg", -weights[:, None], f64),
              const("w_points", factor * weights[None, :], f64),
              const("spread", [[spread]], f64)]
    nodes += [helper.make_node("MatMul", ["woe", "w_neg"], ["s"]),
              helper.make_node("Mul", ["woe", "w_points"], ["woe_points"]),
              helper.make_node("Add", ["woe_points", "spread"], [POINTS])]
    n = model.n_classes_
    inits += [const("theta", model.theta_[None, :], f64), const("zeros", [[0.0]], f64),
              const("ones", [[1.0]], f64)]
    nodes += [
        helper.make_node("Sub", ["theta", "s"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["F"]),
        helper.make_node("Shape", ["F"], ["f_shape"]),
        helper.make_node("Slice", ["f_shape", "start0", "end1"], ["n_rows"]),
        helper.make_node("Concat", ["n_rows", "one_i"], ["col_shape"], axis=0),
        helper.make_node("Expand", ["zeros", "col_shape"], ["zcol"]),
        helper.make_node("Expand", ["ones", "col_shape"], ["ocol"]),
        helper.make_node("Concat", ["F", "ocol"], ["upper"], axis=1),
        helper.make_node("Concat", ["zcol", "F"], ["lower"], axis=1),
        helper.make_node("Sub", ["upper", "lower"], ["prob64"]),
        helper.make_node("Cast", ["prob64"], [PROBABILITIES], to=TensorProto.FLOAT),
    ]
    inits += [const("start0", [0], np.int64), const("end1", [1], np.int64),
              const("one_i", [1], np.int64)]
    graph = make_model(nodes, name="scorecard", inputs=[float_input(FEATURES, n_features)],
                       outputs=[float_input(PROBABILITIES, n),
                                helper.make_tensor_value_info(POINTS, TensorProto.DOUBLE,
                                                              [BATCH, len(model.attrs_)])],
                       initializers=inits, doc="WoE scorecard (cumulative logit) with points")
    for key, value in points_metadata(model).items():
        graph.metadata_props.add(key=key, value=value)
    return graph


def points_table(model: ScorecardModel) -> dict[str, Any]:
    """The scorecard: per attribute and bin, its WoE and points (and the scaling used).

    Score = offset + factor * ln(odds good:bad), factor = pdo / ln 2, offset = base_points -
    factor * ln(base_odds); the intercept's points are spread evenly over the attributes, so
    an applicant's points add up to the score.
    """
    factor, offset, spread = scaling(model)
    rows: list[dict[str, Any]] = []
    for a in model.attrs_:
        # (label, the bin's value the points scale, its univariate WoE, training rows)
        bins: list[tuple[str, float, float, float]] = []
        info = a.info_woe if a.info_woe is not None else a.woe
        if a.value_col is not None:
            raw = [float(e) * a.scale + a.center for e in a.edges]
            lows = ["-inf", *(f"{v:.6g}" for v in raw)]
            highs = [*(f"{v:.6g}" for v in raw), "inf"]
            bins += [(f"({lo}, {hi}]" if hi != "inf" else f"({lo}, inf)", v, w, c)
                     for lo, hi, v, w, c in zip(lows, highs, a.woe, info, a.counts,
                                                strict=True)]
            if a.missing_col is not None:
                bins.append(("missing", a.woe_missing,
                             a.info_woe_missing if a.info_woe is not None else a.woe_missing,
                             float(a.count_missing)))
        else:
            bins += [(cat, v, w, c) for (_, cat), v, w, c in zip(a.onehot, a.woe, info,
                                                                a.counts, strict=True)]
        for label, value, woe, count in bins:
            pts = factor * a.weight * float(value) + spread
            rows.append({"attribute": a.name, "bin": label, "woe": round(float(woe), 6),
                         "points": round(pts, 2), "rows": int(count)})
    out: dict[str, Any] = {
        "pdo": model.pdo, "base_points": model.base_points, "base_odds": model.base_odds,
        "factor": factor, "offset": offset, "bad_from_class_index": model.cut_,
        "method": model.method, "bins": rows}
    if model.method == "woe":  # the penalised fit has one value per bin, not per attribute
        out["coefficients"] = {a.name: round(a.weight, 6) for a in model.attrs_}
    return out
