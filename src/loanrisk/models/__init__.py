"""Models share one scikit-learn style contract; ``make_model`` builds one by name.

Heavy libraries (torch, LightGBM, scikit-learn) are imported only when that model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from typing import Self

    import numpy as np
    import onnx

MODEL_NAMES = ("majority", "linear", "mlp", "gbdt", "ensemble")
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


def make_model(name: str, *, seed: int, task: str, **overrides: Any) -> LoanModel:
    """A new, unfitted model of kind ``name`` ("majority", "linear", "mlp" or "gbdt").

    ``task`` is "binary" or "multiclass"; ``overrides`` go to the model's constructor.
    ``mlp`` takes ``design="reference"`` (the article's network, MLPModel) or ``"tabular"``
    (TabularMLPModel: piecewise-linear encoding and a seed ensemble). ``ensemble`` takes
    ``members=[fitted models]``. Raises ValueError for an unknown name.
    """
    model: Any
    if name == "majority":
        from loanrisk.models.majority import MajorityModel

        model = MajorityModel(seed=seed, task=task, **overrides)
    elif name == "linear":
        from loanrisk.models.linear import LinearModel

        model = LinearModel(seed=seed, task=task, **overrides)
    elif name == "gbdt":
        from loanrisk.models.gbdt import GBDTModel

        model = GBDTModel(seed=seed, task=task, **overrides)
    elif name == "mlp":
        design = overrides.pop("design", "reference")
        if design == "tabular":
            from loanrisk.models.tabular import TabularMLPModel

            model = TabularMLPModel(seed=seed, task=task, **overrides)
        elif design == "reference":
            from loanrisk.models.mlp import MLPModel  # torch is imported only here

            overrides = {k: v for k, v in overrides.items() if k not in TABULAR_ONLY}
            model = MLPModel(seed=seed, task=task, **overrides)
        else:
            raise ValueError(f"unknown mlp design {design!r}; choose from {MLP_DESIGNS}")
    elif name == "ensemble":
        from loanrisk.models.ensemble import EnsembleModel

        model = EnsembleModel(seed=seed, task=task, **overrides)
    else:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    return model
