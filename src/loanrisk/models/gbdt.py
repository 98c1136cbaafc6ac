"""Gradient-boosted trees (LightGBM) with an exact ONNX export written from ``dump_model()``.

LightGBM compares ``x <= threshold`` in double precision. The exported TreeEnsembleRegressor
takes the features cast to double and its thresholds and leaf values as double tensors, so
onnxruntime walks the same branches as LightGBM for every row (float32 thresholds, as
onnxmltools writes them, send rows that lie between the two roundings down the wrong branch).
The raw scores then go through the same sigmoid / softmax as ``predict_proba``.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import numpy as np
import onnx

from loanrisk.errors import DataError
from loanrisk.models.base import class_selector

DEFAULTS: dict[str, Any] = {
    "n_estimators": 1000, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20,
    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 0.0,
}


class GBDTModel:
    """``lightgbm.LGBMClassifier`` with early stopping on the validation rows."""

    name = "gbdt"

    def __init__(self, *, seed: int = 0, task: str = "binary", monotone: list[int] | None = None,
                 early_stopping_rounds: int = 50, n_jobs: int = 2,
                 callbacks: list[Any] | None = None, bag_rows: int | None = 100_000,
                 **lgbm: Any) -> None:
        self.seed = seed
        self.task = task
        self.monotone = list(monotone) if monotone is not None else None
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.callbacks = list(callbacks or [])  # extra LightGBM callbacks (tuning: pruning)
        # rows each boosting round samples at most (bagging): a round's cost stays bounded on a
        # full book, where a fraction of the rows already gives each tree plenty; None: no bound
        self.bag_rows = bag_rows
        self.lgbm = {**DEFAULTS, **lgbm}
        self.history_: dict[str, list[float]] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, *, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, n_classes: int | None = None) -> GBDTModel:
        """Fit on float32 X and int class indices y (early stopping on X_val); returns self.

        Raises DataError for a single training class, ValueError for a monotone vector whose
        length is not the number of feature columns.
        """
        import lightgbm as lgb

        X = np.asarray(X, dtype=np.float32)  # LightGBM then sees exactly what ONNX sees
        y = np.asarray(y, dtype=np.int64)
        self.n_classes_ = int(n_classes if n_classes is not None else y.max() + 1)
        if np.unique(y).size < 2:
            raise DataError("the training rows hold a single class; a classifier needs two")
        extra: dict[str, Any] = {}
        if self.monotone is not None and any(self.monotone):
            if len(self.monotone) != X.shape[1]:
                raise ValueError(f"monotone has {len(self.monotone)} entries for "
                                 f"{X.shape[1]} feature columns")
            extra["monotone_constraints"] = [int(m) for m in self.monotone]
        params = dict(self.lgbm)
        if self.bag_rows is not None and len(X) > self.bag_rows:
            params["subsample"] = min(float(params.get("subsample", 1.0)), self.bag_rows / len(X))
            params["subsample_freq"] = params.get("subsample_freq") or 1
        self.bagging_ = float(params.get("subsample", 1.0))
        self.lgbm_ = lgb.LGBMClassifier(**params, random_state=self.seed, n_jobs=self.n_jobs,
                                        verbose=-1, zero_as_missing=False, **extra)
        fit_kw: dict[str, Any] = {}
        if X_val is not None and y_val is not None and self.early_stopping_rounds:
            X_val = np.asarray(X_val, dtype=np.float32)
            fit_kw = {**_eval_kw(lgb, X_val, y_val),
                      "callbacks": [lgb.early_stopping(self.early_stopping_rounds,
                                                       verbose=False), *self.callbacks]}
        self.lgbm_.fit(X, y, **fit_kw)
        self.classes_ = np.asarray(self.lgbm_.classes_, dtype=np.int64)
        best = self.lgbm_.best_iteration_
        self.n_iter_ = int(best) if best else int(self.lgbm_.booster_.current_iteration())
        ev = getattr(self.lgbm_, "evals_result_", None) or {}
        self.history_ = {f"val_{k}": list(map(float, v))
                         for part in ev.values() for k, v in part.items()} or None
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_classes), float64, from the best iteration."""
        p = self.lgbm_.predict_proba(np.asarray(X, dtype=np.float32), num_iteration=self.n_iter_)
        sel = class_selector(self.classes_, self.n_classes_)
        return np.asarray(p, dtype=np.float64) if sel is None else p @ sel

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        """Graph "features" [N,F] -> "probabilities" [N,C] (double thresholds, see module doc)."""
        from onnx import TensorProto, helper

        from loanrisk.onnx_utils import (
            FEATURES,
            ML_DOMAIN,
            PROBABILITIES,
            const,
            float_input,
            make_model,
        )

        dump = self.lgbm_.booster_.dump_model(num_iteration=self.n_iter_)
        k = int(dump["num_tree_per_iteration"])
        attrs: dict[str, Any] = _tree_attributes(dump["tree_info"], k)
        attrs["nodes_values_as_tensor"] = helper.make_tensor(
            "nodes_values", TensorProto.DOUBLE, [len(attrs["nodes_nodeids"])],
            attrs.pop("nodes_values"))
        attrs["target_weights_as_tensor"] = helper.make_tensor(
            "target_weights", TensorProto.DOUBLE, [len(attrs["target_ids"])],
            attrs.pop("target_weights"))
        nodes = [
            helper.make_node("Cast", [FEATURES], ["x64"], to=TensorProto.DOUBLE),
            helper.make_node("TreeEnsembleRegressor", ["x64"], ["raw"], domain=ML_DOMAIN,
                             n_targets=k, aggregate_function="SUM", post_transform="NONE",
                             **attrs),
            helper.make_node("Cast", ["raw"], ["raw64"], to=TensorProto.DOUBLE),
        ]
        inits: list[Any] = []
        if k == 1:  # binary: p = sigmoid(s * raw); probabilities [1 - p, p]
            match = re.search(r"sigmoid:([0-9.eE+-]+)", str(dump.get("objective", "")))
            inits += [const("sig", [[float(match.group(1)) if match else 1.0]], np.float64),
                      const("one", [[1.0]], np.float64)]
            nodes += [helper.make_node("Mul", ["raw64", "sig"], ["scaled"]),
                      helper.make_node("Sigmoid", ["scaled"], ["p"]),
                      helper.make_node("Sub", ["one", "p"], ["q"]),
                      helper.make_node("Concat", ["q", "p"], ["prob64"], axis=1)]
        else:
            nodes.append(helper.make_node("Softmax", ["raw64"], ["prob64"], axis=1))
        last, sel = "prob64", class_selector(self.classes_, self.n_classes_)
        if sel is not None:
            inits.append(const("selector", sel, np.float64))
            nodes.append(helper.make_node("MatMul", ["prob64", "selector"], ["prob_all"]))
            last = "prob_all"
        nodes.append(helper.make_node("Cast", [last], [PROBABILITIES], to=TensorProto.FLOAT))
        return make_model(nodes, name="gbdt", inputs=[float_input(FEATURES, n_features)],
                          outputs=[float_input(PROBABILITIES, self.n_classes_)],
                          initializers=inits, doc=f"LightGBM, {self.n_iter_} iterations")

    def params(self) -> dict[str, Any]:
        """Hyperparameters, for MLflow (with the iteration early stopping chose, once fitted)."""
        out = {"seed": self.seed, **self.lgbm, "early_stopping_rounds": self.early_stopping_rounds,
               "monotone": bool(self.monotone and any(self.monotone))}
        if hasattr(self, "n_iter_"):
            out["best_iteration"] = self.n_iter_
            out["bagging_fraction_used"] = self.bagging_
        return out


def _eval_kw(lgb: Any, X_val: np.ndarray, y_val: np.ndarray) -> dict[str, Any]:
    """The validation rows as ``fit`` keywords (``eval_X``/``eval_y`` from LightGBM 4.6 on)."""
    if "eval_X" in inspect.signature(lgb.LGBMClassifier.fit).parameters:
        return {"eval_X": (X_val,), "eval_y": (y_val,)}
    return {"eval_set": [(X_val, y_val)]}


def _tree_attributes(trees: list[dict[str, Any]], k: int) -> dict[str, list[Any]]:
    """TreeEnsembleRegressor attributes from LightGBM's ``tree_info``; tree i adds to score i % k.

    Raises ValueError for split kinds the export cannot express (categorical, zero-as-missing).
    """
    a: dict[str, list[Any]] = {key: [] for key in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
        "target_treeids", "target_nodeids", "target_ids", "target_weights")}
    for tree_id, tree in enumerate(trees):
        _visit(tree["tree_structure"], a, tree_id=tree_id, target=tree_id % k, counter=[0])
    return a


def _visit(node: dict[str, Any], a: dict[str, list[Any]], *, tree_id: int, target: int,
           counter: list[int]) -> int:
    """Append ``node`` and its subtree (numbered pre-order); returns the node's id."""
    nid = counter[0]
    counter[0] += 1
    pos = len(a["nodes_nodeids"])
    for key, val in (("nodes_treeids", tree_id), ("nodes_nodeids", nid), ("nodes_featureids", 0),
                     ("nodes_modes", "LEAF"), ("nodes_values", 0.0), ("nodes_truenodeids", 0),
                     ("nodes_falsenodeids", 0), ("nodes_missing_value_tracks_true", 0)):
        a[key].append(val)
    if "split_index" not in node:  # a leaf
        a["target_treeids"].append(tree_id)
        a["target_nodeids"].append(nid)
        a["target_ids"].append(target)
        a["target_weights"].append(float(node["leaf_value"]))
        return nid
    if node["decision_type"] != "<=" or node.get("missing_type") == "Zero":
        raise ValueError(f"cannot export a {node['decision_type']!r} split with missing type "
                         f"{node.get('missing_type')!r}")
    threshold = float(node["threshold"])
    # NaN: LightGBM sends it to the default side ("NaN") or compares it as 0.0 ("None")
    nan_left = node["default_left"] if node.get("missing_type") == "NaN" else 0.0 <= threshold
    a["nodes_featureids"][pos] = int(node["split_feature"])
    a["nodes_modes"][pos] = "BRANCH_LEQ"
    a["nodes_values"][pos] = threshold
    a["nodes_missing_value_tracks_true"][pos] = int(bool(nan_left))
    for side, child in (("nodes_truenodeids", "left_child"), ("nodes_falsenodeids", "right_child")):
        a[side][pos] = _visit(node[child], a, tree_id=tree_id, target=target, counter=counter)
    return nid
