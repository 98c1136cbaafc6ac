"""The AWS Machine Learning baseline: logistic regression trained by SGD for 20 passes.

Multiclass is one-vs-rest, and probabilities are the OvR sigmoids divided by their sum, exactly
as scikit-learn's ``SGDClassifier.predict_proba``; the ONNX graph computes the same in double.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx

from loanrisk.errors import DataError
from loanrisk.models.base import class_selector


def _expit(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit  # what scikit-learn uses; no overflow warnings

    return np.asarray(expit(z), dtype=np.float64)


class LinearModel:
    """``SGDClassifier(loss="log_loss", max_iter=20, tol=None)``; binary uses one logit."""

    name = "linear"

    def __init__(self, *, seed: int = 0, task: str = "binary", alpha: float = 1e-4,
                 max_iter: int = 20, penalty: str = "l2") -> None:
        self.seed = seed
        self.task = task
        self.alpha = alpha
        self.max_iter = max_iter
        self.penalty = penalty
        self.history_: dict[str, list[float]] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, *, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, n_classes: int | None = None) -> LinearModel:
        """Fit on float32 X and int class indices y; returns self.

        Raises DataError when the training labels hold a single class.
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import SGDClassifier

        y = np.asarray(y, dtype=np.int64)
        self.n_classes_ = int(n_classes if n_classes is not None else y.max() + 1)
        if np.unique(y).size < 2:
            raise DataError("the training rows hold a single class; a classifier needs two")
        self.sgd_ = SGDClassifier(loss="log_loss", max_iter=self.max_iter, tol=None,
                                  alpha=self.alpha, penalty=self.penalty,
                                  random_state=self.seed, class_weight=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # float64 in: sklearn then keeps float64 weights and its own predict_proba is ours
            self.sgd_.fit(np.asarray(X, dtype=np.float64), y)
        self.classes_ = self.sgd_.classes_.astype(np.int64)  # the classes seen in training
        self.coef_ = self.sgd_.coef_.astype(np.float64)  # (1 or K, F)
        self.intercept_ = self.sgd_.intercept_.astype(np.float64)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_classes) in float64, as ``SGDClassifier.predict_proba``."""
        z = np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_
        p = _expit(z)
        if p.shape[1] == 1:
            p = np.hstack([1.0 - p, p])
        else:
            total = p.sum(axis=1, keepdims=True)
            zero = total == 0
            p = np.where(zero, 1.0, p) / np.where(zero, p.shape[1], total)
        sel = class_selector(self.classes_, self.n_classes_)
        return p if sel is None else p @ sel

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        """Graph "features" [N,F] -> "probabilities" [N,C]: MatMul, Add, Sigmoid, normalise."""
        from onnx import TensorProto, helper

        from loanrisk.onnx_utils import FEATURES, PROBABILITIES, const, float_input, make_model

        f64 = np.float64
        inits = [const("W", self.coef_.T, f64), const("b", self.intercept_[None, :], f64),
                 const("one", [[1.0]], f64)]
        nodes = [
            helper.make_node("Cast", [FEATURES], ["x64"], to=TensorProto.DOUBLE),
            helper.make_node("MatMul", ["x64", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["p"]),
        ]
        if self.coef_.shape[0] == 1:  # binary: one logit, [1-p, p]
            nodes += [helper.make_node("Sub", ["one", "p"], ["q"]),
                      helper.make_node("Concat", ["q", "p"], ["prob64"], axis=1)]
        else:  # OvR: divide by the row sum; an all-zero row becomes uniform, as in sklearn
            inits += [const("k", [[float(self.coef_.shape[0])]], f64),
                      const("zero", [[0.0]], f64), const("axes", [1], np.int64)]
            nodes += [
                helper.make_node("ReduceSum", ["p", "axes"], ["total"], keepdims=1),
                helper.make_node("Equal", ["total", "zero"], ["all_zero"]),
                helper.make_node("Where", ["all_zero", "one", "p"], ["num"]),
                helper.make_node("Where", ["all_zero", "k", "total"], ["den"]),
                helper.make_node("Div", ["num", "den"], ["prob64"]),
            ]
        last = "prob64"
        sel = class_selector(self.classes_, self.n_classes_)
        if sel is not None:
            inits.append(const("selector", sel, f64))
            nodes.append(helper.make_node("MatMul", ["prob64", "selector"], ["prob_all"]))
            last = "prob_all"
        nodes.append(helper.make_node("Cast", [last], [PROBABILITIES], to=TensorProto.FLOAT))
        return make_model(nodes, name="linear", inputs=[float_input(FEATURES, n_features)],
                          outputs=[float_input(PROBABILITIES, self.n_classes_)],
                          initializers=inits, doc="SGD logistic regression (one-vs-rest)")

    def params(self) -> dict[str, Any]:
        """Hyperparameters, for MLflow."""
        return {"seed": self.seed, "loss": "log_loss", "alpha": self.alpha,
                "max_iter": self.max_iter, "penalty": self.penalty, "tol": None}
