"""Probability calibration fitted on the validation rows, always inside the model's ONE graph.

* Temperature scaling (multiclass): p' = softmax(a * log p). For a network this equals
  softmax(a * logits) (log-softmax differs from the logits by a per-row constant), so for the
  reference mlp the factor is folded into its last layer: W <- a W, b <- a b.
* Platt scaling (binary): p' = sigmoid(a * logit(p) + b), logit(p) = log p1 - log p0. For the
  reference mlp it is folded too: its one logit becomes a * z + b.
Other models are wrapped by ``CalibratedModel``, whose graph is the base graph followed by
Clip -> Log -> (MatMul) -> Mul -> Add -> Sigmoid/Softmax. a > 0, so a binary ranking (ROC-AUC)
never changes. a and b minimise the validation log loss (L-BFGS).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from loanrisk.learn.evaluate import expected_calibration_error

EPS = 1e-7  # probabilities are clipped here before the log (float32 safe)


def _log_proba(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(p, dtype=np.float32), np.float32(EPS), None)
                  ).astype(np.float64)


def _transform(z: np.ndarray, a: float, b: float) -> np.ndarray:
    """Calibrated probabilities from per-class log probabilities (or logits) z (n, C)."""
    if z.shape[1] == 2:
        s = a * (z[:, 1] - z[:, 0]) + b
        p = 1.0 / (1.0 + np.exp(-s))
        return np.column_stack([1.0 - p, p])
    u = a * z
    u = u - u.max(axis=1, keepdims=True)
    e = np.exp(u)
    return e / e.sum(axis=1, keepdims=True)


def fit_scaling(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the log loss of ``_transform(z, a, b)``; b stays 0 for multiclass."""
    from scipy.optimize import minimize

    y = np.asarray(y, dtype=np.int64)
    binary = z.shape[1] == 2

    def nll(theta: np.ndarray) -> float:
        a, b = float(np.exp(theta[0])), float(theta[1]) if binary else 0.0
        p = _transform(z, a, b)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-15, None))))

    res = minimize(nll, np.zeros(2 if binary else 1), method="L-BFGS-B",
                   bounds=[(-4.0, 4.0)] + ([(-10.0, 10.0)] if binary else []))
    return float(np.exp(res.x[0])), float(res.x[1]) if binary else 0.0


class CalibratedModel:
    """A fitted model followed by temperature / Platt scaling of its log probabilities."""

    def __init__(self, base: Any, *, a: float, b: float, info: dict[str, Any]) -> None:
        self.base = base
        self.name = base.name
        self.a, self.b = float(np.float32(a)), float(np.float32(b))
        self.calibration_ = info
        self.history_ = getattr(base, "history_", None)
        self.n_classes_ = base.n_classes_

    def fit(self, *args: Any, **kwargs: Any) -> CalibratedModel:
        """Refit the base model (the calibration is kept as it was)."""
        self.base.fit(*args, **kwargs)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The base model's probabilities, calibrated; float64 (n, n_classes)."""
        return _transform(_log_proba(self.base.predict_proba(X)), self.a, self.b)

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        """The base graph inlined, then Clip -> Log -> scaling -> Sigmoid/Softmax."""
        from onnx import helper

        from loanrisk.models.compose import inline
        from loanrisk.onnx_utils import FEATURES, PROBABILITIES, const, float_input, make_model

        nodes, inits = inline(self.base.to_onnx(n_features), prefix="base/", feed=FEATURES,
                              out="p_base")
        inits += [const("cal_eps", EPS), const("cal_a", [[self.a]])]
        nodes += [helper.make_node("Clip", ["p_base", "cal_eps"], ["p_clip"]),
                  helper.make_node("Log", ["p_clip"], ["logp"])]
        if self.n_classes_ == 2:
            inits += [const("cal_diff", [[-1.0], [1.0]]), const("cal_one", [[1.0]]),
                      const("cal_b", [[self.b]])]
            nodes += [helper.make_node("MatMul", ["logp", "cal_diff"], ["logit"]),
                      helper.make_node("Mul", ["logit", "cal_a"], ["s_a"]),
                      helper.make_node("Add", ["s_a", "cal_b"], ["s"]),
                      helper.make_node("Sigmoid", ["s"], ["p1"]),
                      helper.make_node("Sub", ["cal_one", "p1"], ["p0"]),
                      helper.make_node("Concat", ["p0", "p1"], [PROBABILITIES], axis=1)]
        else:
            nodes += [helper.make_node("Mul", ["logp", "cal_a"], ["u"]),
                      helper.make_node("Softmax", ["u"], [PROBABILITIES], axis=1)]
        return make_model(nodes, name=f"{self.name}_calibrated",
                          inputs=[float_input(FEATURES, n_features)],
                          outputs=[float_input(PROBABILITIES, self.n_classes_)],
                          initializers=inits, doc=f"{self.calibration_['method']} calibration")

    def params(self) -> dict[str, Any]:
        """The base model's hyperparameters and the calibration, for MLflow."""
        return {**self.base.params(), "calibration": self.calibration_["method"],
                "calibration_a": self.a, "calibration_b": self.b}


def _fold_into_mlp(model: Any, a: float, b: float) -> None:
    """Scale the reference mlp's last layer so its logits become a * z (+ b for one logit)."""
    import torch

    last = model.linear_layers()[-1]
    with torch.no_grad():
        last.weight.mul_(a)
        last.bias.mul_(a)
        if last.out_features == 1:
            last.bias.add_(b)


# validation rows the scaling is fitted and checked on at most
MAX_ROWS = 10_000


def calibrate(model: Any, *, X_val: np.ndarray, y_val: np.ndarray) -> Any:
    """``model`` calibrated on the validation rows (folded into the mlp, else wrapped).

    Returns the model unchanged when there are no validation rows or a single class in them.
    The result has ``calibration_``: method, a, b and the validation ECE before and after.
    On more than ``MAX_ROWS`` validation rows (a full book), a seeded sample of that many.
    """
    y_val = np.asarray(y_val, dtype=np.int64)
    if len(y_val) == 0 or np.unique(y_val).size < 2:
        return model
    if len(y_val) > MAX_ROWS:  # one or two parameters: a seeded sample fits them as well
        keep = np.sort(np.random.default_rng(0).choice(len(y_val), MAX_ROWS, replace=False))
        X_val, y_val = X_val[keep], y_val[keep]
    p = np.asarray(model.predict_proba(X_val), dtype=np.float64)
    folded = type(model).__name__ == "MLPModel"
    if folded:  # logits: exact, and the factor folds into the last Linear layer
        z = model.logits(X_val)
        z = np.column_stack([np.zeros(len(z)), z[:, 0]]) if z.shape[1] == 1 else z
    else:
        z = _log_proba(p)
    a, b = fit_scaling(z, y_val)
    method = "platt" if p.shape[1] == 2 else "temperature"
    info = {"method": method, "a": a, "b": b, "fitted_on": "validation", "rows": len(y_val),
            "folded": folded, "val_ece_before": expected_calibration_error(y_val, p)}
    if folded:
        a32, b32 = float(np.float32(a)), float(np.float32(b))
        _fold_into_mlp(model, a32, b32)
        model.calibration_ = info
        out = model
        after = out.predict_proba(X_val)
    else:
        out = CalibratedModel(model, a=a, b=b, info=info)
        after = _transform(_log_proba(p), out.a, out.b)  # what out.predict_proba(X_val) gives
    info["val_ece_after"] = expected_calibration_error(y_val, after)
    return out
