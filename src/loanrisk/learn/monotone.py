"""Monotone attributes: how often a model breaks the direction the schema declares.

For each attribute with ``monotone`` +1 (more never lowers risk) or -1 (more never raises it),
every evaluation row with a value is paired with a copy whose value is one step higher; nothing
else differs. Both go through the model's ONNX graph. Risk is P(adverse) for binary targets and
the expected class index (classes ordered best to worst) for grades. A pair violates when risk
moves against the declared direction by more than ``tol``. Step: 1 for integer-valued attributes,
else a tenth of the training interquartile range (of the standard deviation when that is 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from loanrisk.schema import Attribute


# evaluation rows checked at most (a seeded sample beyond): the rate is settled long before
MAX_ROWS = 5_000


def badness(proba: np.ndarray, *, task: str) -> np.ndarray:
    """P(adverse) (binary) or the expected class index (multiclass)."""
    if task == "binary":
        return proba[:, -1]
    return proba @ np.arange(proba.shape[1], dtype=np.float64)


def step_of(train: pd.Series) -> float:
    """The perturbation for one attribute, from its training values."""
    x = pd.to_numeric(train, errors="coerce").dropna().to_numpy(dtype=float)
    if x.size == 0:
        return 1.0
    if np.all(np.equal(np.mod(x, 1), 0)):
        return 1.0
    q25, q75 = np.percentile(x, [25, 75])
    step = (q75 - q25) / 10 or float(np.std(x)) / 10
    return float(step) if step > 0 else 1.0


def violations(graph: bytes, *, train: pd.DataFrame, ev: pd.DataFrame,
               attrs: list[Attribute], task: str, tol: float = 1e-6,
               max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """Per monotone attribute: pairs, violation rate and largest wrong move; plus the overall rate.

    Empty ``attributes`` when the schema declares no monotone feature. On more than ``max_rows``
    evaluation rows, a seeded sample of that many (``rows_checked`` says how many of ``rows``).
    """
    from loanrisk.learn.export import OnnxModel

    mono = [a for a in attrs if a.monotone and a.type in ("numeric", "binary")
            and a.name in ev.columns]
    model = OnnxModel(graph)
    mono = [a for a in mono if model.input_types.get(a.name) == "float"]
    out: dict[str, Any] = {"attributes": {}, "pairs": 0, "violation_rate": 0.0,
                           "rows_checked": min(len(ev), max_rows), "rows": len(ev)}
    if not mono or len(ev) == 0:
        return out
    if len(ev) > max_rows:
        ev = ev.sample(n=max_rows, random_state=0)
    base = badness(model.predict_proba(ev), task=task)
    total_pairs = total_bad = 0
    for a in mono:
        x = pd.to_numeric(ev[a.name], errors="coerce")
        has = x.notna().to_numpy()
        if not has.any():
            continue
        step = step_of(train[a.name])
        moved = ev.loc[has].copy()
        moved[a.name] = x[has] + step
        r = badness(model.predict_proba(moved), task=task)
        wrong = a.monotone * (r - base[has])  # negative: risk moved against the direction
        bad = int(np.sum(wrong < -tol))
        out["attributes"][a.name] = {
            "direction": int(a.monotone), "step": step, "pairs": int(has.sum()),
            "violations": bad, "violation_rate": round(bad / int(has.sum()), 6),
            "max_wrong_move": round(float(max(0.0, -wrong.min())), 6)}
        total_pairs += int(has.sum())
        total_bad += bad
    out["pairs"] = total_pairs
    out["violation_rate"] = round(total_bad / total_pairs, 6) if total_pairs else 0.0
    return out
