"""Metrics on the evaluation split, computed from probabilities.

The probabilities are those of the exported ONNX graph, so what is measured is what is served.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1_macro",
    "f1_weighted",
    "roc_auc",
    "log_loss",
    "brier",
    "ece",
)
# Metrics where lower is better; everything else is higher-is-better.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece"})


@dataclass
class Evaluation:
    """Metrics and the confusion matrix of one model on one split."""

    model: str
    metrics: dict[str, float]
    confusion: np.ndarray
    classes: list[str]
    extra: dict[str, float] = field(default_factory=dict)


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, *, bins: int = 15) -> float:
    """Top-label expected calibration error with equal-width confidence bins."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def compute_metrics(y: np.ndarray, proba: np.ndarray, *, n_classes: int) -> dict[str, float]:
    """Accuracy, precision, recall, macro/weighted F1, ROC-AUC, log loss, Brier and ECE.

    Binary: precision, recall and ROC-AUC treat the last class (the adverse one) as positive.
    Multiclass: precision and recall are macro averages; ROC-AUC is one-vs-rest macro; the Brier
    score is the mean squared error over all class columns.
    """
    proba = np.asarray(proba, dtype=np.float64)
    proba = np.clip(proba, 0.0, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    labels = list(range(n_classes))
    onehot = np.eye(n_classes)[y]
    out: dict[str, float] = {
        "accuracy": float(accuracy_score(y, pred)),
        "f1_macro": float(f1_score(y, pred, average="macro", labels=labels, zero_division=0)),
        "f1_weighted": float(f1_score(y, pred, average="weighted", labels=labels, zero_division=0)),
        "log_loss": float(log_loss(y, proba, labels=labels)),
        "ece": expected_calibration_error(y, proba),
    }
    if n_classes == 2:
        out["precision"] = float(precision_score(y, pred, pos_label=1, zero_division=0))
        out["recall"] = float(recall_score(y, pred, pos_label=1, zero_division=0))
        out["roc_auc"] = _safe_auc(lambda: roc_auc_score(y, proba[:, 1]))
        out["brier"] = float(np.mean((proba[:, 1] - y) ** 2))
    else:
        out["precision"] = float(
            precision_score(y, pred, average="macro", labels=labels, zero_division=0)
        )
        out["recall"] = float(recall_score(y, pred, average="macro", labels=labels,
                                           zero_division=0))
        present = np.unique(y)
        out["roc_auc"] = _safe_auc(
            lambda: roc_auc_score(
                y, proba[:, present] / proba[:, present].sum(1, keepdims=True),
                multi_class="ovr", average="macro", labels=present,
            )
            if len(present) < n_classes
            else roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels)
        )
        out["brier"] = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)) / n_classes)
    return {k: out[k] for k in METRICS}


def _safe_auc(fn: object) -> float:
    try:
        return float(fn())  # type: ignore[operator]
    except ValueError:  # a single class present: AUC undefined
        return float("nan")


def evaluate(
    model_name: str, y: np.ndarray, proba: np.ndarray, *, classes: list[str]
) -> Evaluation:
    """Evaluate one model's probabilities against the true class indices."""
    n = len(classes)
    metrics = compute_metrics(y, proba, n_classes=n)
    cm = confusion_matrix(y, np.asarray(proba).argmax(axis=1), labels=list(range(n)))
    return Evaluation(model=model_name, metrics=metrics, confusion=cm, classes=list(classes))


def is_better(a: float, b: float, *, metric: str) -> bool:
    """True when score ``a`` beats ``b`` on ``metric`` (NaN never beats anything)."""
    if np.isnan(a):
        return False
    if np.isnan(b):
        return True
    return a < b if metric in LOWER_IS_BETTER else a > b


def comparison_table(evals: list[Evaluation], *, primary: str) -> str:
    """A Markdown table: one row per model, the best value of each metric in bold."""
    cols = list(METRICS)
    best: dict[str, float] = {}
    for c in cols:
        vals = [e.metrics[c] for e in evals if not np.isnan(e.metrics[c])]
        if vals:
            best[c] = min(vals) if c in LOWER_IS_BETTER else max(vals)
    head = "| model | " + " | ".join(f"**{c}**" if c == primary else c for c in cols) + " |"
    sep = "|---|" + "---:|" * len(cols)
    rows = [head, sep]
    for e in evals:
        cells = []
        for c in cols:
            v = e.metrics[c]
            s = "n/a" if np.isnan(v) else f"{v:.4f}"
            cells.append(f"**{s}**" if c in best and v == best[c] else s)
        rows.append(f"| {e.model} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
