"""The majority baseline: every application gets the training class shares."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx


class MajorityModel:
    """Predicts the class prior learned from the training labels, whatever the features."""

    name = "majority"

    def __init__(self, *, seed: int = 0, task: str = "binary") -> None:
        self.seed = seed
        self.task = task
        self.history_: dict[str, list[float]] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, *, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, n_classes: int | None = None) -> MajorityModel:
        """Learn the class shares of ``y`` (int indices into the classes); returns self."""
        y = np.asarray(y, dtype=np.int64)
        k = int(n_classes if n_classes is not None else y.max() + 1)
        counts = np.bincount(y, minlength=k).astype(np.float64)
        # float32-representable shares, so the numpy and ONNX answers are identical
        self.prior_ = (counts / counts.sum()).astype(np.float32).astype(np.float64)
        self.n_classes_ = k
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The prior, repeated for each row: (n, n_classes)."""
        return np.tile(self.prior_, (len(X), 1))

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        """Graph "features" [N,F] -> "probabilities" [N,C]: the prior expanded to N rows."""
        from onnx import helper

        from loanrisk.onnx_utils import FEATURES, PROBABILITIES, const, float_input, make_model

        inits = [const("prior", self.prior_[None, :]),
                 const("n_cols", [self.n_classes_], np.int64),
                 const("zero", [0], np.int64)]
        nodes = [
            helper.make_node("Shape", [FEATURES], ["shape"]),
            helper.make_node("Gather", ["shape", "zero"], ["n_rows"], axis=0),
            helper.make_node("Concat", ["n_rows", "n_cols"], ["out_shape"], axis=0),
            helper.make_node("Expand", ["prior", "out_shape"], [PROBABILITIES]),
        ]
        return make_model(nodes, name="majority", inputs=[float_input(FEATURES, n_features)],
                          outputs=[float_input(PROBABILITIES, self.n_classes_)],
                          initializers=inits, doc="class prior from the training labels")

    def params(self) -> dict[str, Any]:
        """No hyperparameters beyond the seed."""
        return {"seed": self.seed}
