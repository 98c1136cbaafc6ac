"""The "ensemble" family: a weighted average of already fitted models' probabilities, one graph.

Its members (by default the mlp and the gbdt of the same run, see ``pipeline.ENSEMBLE_MEMBERS``)
were fitted on the same training rows; ``fit`` only chooses the mlp's weight on the validation
rows (log loss over a grid), never on the evaluation rows. The ONNX graph inlines every member
behind the shared "features" input and sums the weighted probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from loanrisk.errors import LoanriskError

GRID = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))


# validation rows the weight is chosen on at most (a full book's would only cost time)
WEIGHT_ROWS = 10_000

class EnsembleModel:
    """``sum_i w_i * member_i.predict_proba(X)`` with weights that sum to 1."""

    name = "ensemble"

    def __init__(self, *, seed: int = 0, task: str = "binary", members: list[Any] | None = None,
                 weights: list[float] | None = None) -> None:
        if not members:
            raise LoanriskError("an ensemble needs fitted members: list mlp and gbdt before "
                                "ensemble in --models")
        self.seed = seed
        self.task = task
        self.members = list(members)
        self.weights = list(weights) if weights is not None else None
        self.history_: dict[str, list[float]] | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, *, X_val: np.ndarray, y_val: np.ndarray,
            n_classes: int) -> EnsembleModel:
        """Choose the weights on (X_val, y_val) unless given (at most ``WEIGHT_ROWS`` of them, a
        seeded sample beyond); the members stay as fitted."""
        from sklearn.metrics import log_loss

        self.n_classes_ = int(n_classes)
        if self.weights is not None:
            self.weights_ = [w / sum(self.weights) for w in self.weights]
            return self
        if len(self.members) != 2 or len(X_val) == 0:
            self.weights_ = [1.0 / len(self.members)] * len(self.members)
            return self
        if len(X_val) > WEIGHT_ROWS:  # one weight on a grid: a seeded sample settles it
            keep = np.sort(np.random.default_rng(0).choice(len(X_val), WEIGHT_ROWS,
                                                           replace=False))
            X_val, y_val = X_val[keep], np.asarray(y_val)[keep]
        p = [m.predict_proba(X_val) for m in self.members]
        labels = list(range(n_classes))
        scores = {w: log_loss(y_val, np.clip(w * p[0] + (1 - w) * p[1], 1e-12, 1), labels=labels)
                  for w in GRID}
        w = min(scores, key=lambda k: (scores[k], abs(k - 0.5)))
        self.weights_ = [float(w), float(1 - w)]
        self.val_log_loss_ = float(scores[w])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The weighted average of the members' probabilities, float64 (n, n_classes)."""
        out = np.zeros((len(X), self.n_classes_))
        for m, w in zip(self.members, self.weights_, strict=True):
            out += np.float64(np.float32(w)) * m.predict_proba(X)
        return out

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        """Graph "features" [N,F] -> "probabilities": every member inlined, weighted, summed."""
        from loanrisk.models.compose import average_nodes
        from loanrisk.onnx_utils import FEATURES, PROBABILITIES, float_input, make_model

        nodes, inits = average_nodes(self.members, self.weights_, n_features=n_features,
                                     feed=FEATURES, out=PROBABILITIES)
        names = "+".join(m.name for m in self.members)
        return make_model(nodes, name="ensemble", inputs=[float_input(FEATURES, n_features)],
                          outputs=[float_input(PROBABILITIES, self.n_classes_)],
                          initializers=inits, doc=f"average of {names}, weights {self.weights_}")

    def params(self) -> dict[str, Any]:
        """Member names and weights, for MLflow."""
        return {"members": [m.name for m in self.members],
                "weights": getattr(self, "weights_", self.weights)}
