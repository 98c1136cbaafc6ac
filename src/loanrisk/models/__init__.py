"""Models share one scikit-learn style contract; ``make_model`` builds one by name.

Heavy libraries (torch, LightGBM, scikit-learn) are imported only when that model is built.
"""

from __future__ import annotations

from typing import Any

from loanrisk.models.base import (
    MLP_DESIGNS,
    MODEL_NAMES,
    TABULAR_ONLY,
    LoanModel,
    class_selector,
)

__all__ = ["MLP_DESIGNS", "MODEL_NAMES", "TABULAR_ONLY", "LoanModel", "class_selector",
           "make_model"]



def make_model(name: str, *, seed: int, task: str, **overrides: Any) -> LoanModel:
    """A new, unfitted model of kind ``name`` ("majority", "linear", "mlp", "gbdt", "ensemble" or
    "scorecard").

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
    elif name == "scorecard":
        from loanrisk.models.scorecard import ScorecardModel

        model = ScorecardModel(seed=seed, task=task, **overrides)
    elif name == "ensemble":
        from loanrisk.models.ensemble import EnsembleModel

        model = EnsembleModel(seed=seed, task=task, **overrides)
    else:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    return model
