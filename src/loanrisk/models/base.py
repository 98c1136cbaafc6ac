"""The contract every model family keeps (:class:`LoanModel`), the family names, and helpers the
families share. Imports no model library."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from typing import Self

    import numpy as np
    import onnx

MODEL_NAMES = ("majority", "linear", "mlp", "gbdt", "ensemble", "scorecard")
MLP_DESIGNS = ("reference", "tabular")
TABULAR_ONLY = frozenset({"n_bins", "bins", "members", "keep_raw"})  # ignored by "reference"


@runtime_checkable
class LoanModel(Protocol):
    """What evaluation, export and the registry rely on, whatever the kind of model."""

    name: str
    history_: dict[str, list[float]] | None

    def fit(self, X: np.ndarray, y: np.ndarray, *, X_val: np.ndarray, y_val: np.ndarray,
            n_classes: int) -> Self:
        """Learn from float32 features X and int64 class indices y; returns self."""
        ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_classes), one column per class in schema order; rows sum to 1."""
        ...

    def to_onnx(self, n_features: int) -> onnx.ModelProto:
        """Graph: input "features" float [N, n_features] -> output "probabilities" [N, C]."""
        ...

    def params(self) -> dict[str, Any]:
        """Hyperparameters, for MLflow."""
        ...


def class_selector(classes: np.ndarray, n_classes: int) -> np.ndarray | None:
    """(K, C) 0/1 matrix placing the K classes seen in training among all C; None if K == C.

    A model that saw only some classes (a rare grade missing from a small training split)
    multiplies its (n, K) probabilities by it to give the (n, C) every model returns.
    """
    import numpy as np

    if len(classes) == n_classes:
        return None
    sel = np.zeros((len(classes), n_classes))
    sel[np.arange(len(classes)), classes] = 1.0
    return sel
