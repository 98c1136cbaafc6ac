from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loanrisk.learn.evaluate import (
    comparison_table,
    compute_metrics,
    evaluate,
    expected_calibration_error,
    is_better,
)
from loanrisk.registry import roc_auc


def _binary(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    p = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.2, n), 0.01, 0.99)
    return y, np.column_stack([1 - p, p])


def test_binary_metrics_use_adverse_class_as_positive() -> None:
    y, proba = _binary()
    m = compute_metrics(y, proba, n_classes=2)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]))
    assert m["brier"] == pytest.approx(np.mean((proba[:, 1] - y) ** 2))
    assert 0 <= m["ece"] <= 1
    assert set(m) >= {"accuracy", "precision", "recall", "f1_macro", "f1_weighted", "log_loss"}


def test_multiclass_auc_is_one_vs_rest_macro() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 500)
    logits = rng.normal(size=(500, 4)) + 2 * np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = compute_metrics(y, proba, n_classes=4)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))


def test_serving_side_auc_matches_sklearn() -> None:
    y, proba = _binary(seed=3)
    assert roc_auc(y, proba) == pytest.approx(roc_auc_score(y, proba[:, 1]))
    rng = np.random.default_rng(2)
    y3 = rng.integers(0, 3, 300)
    p3 = rng.dirichlet(np.ones(3), 300)
    assert roc_auc(y3, p3) == pytest.approx(roc_auc_score(y3, p3, multi_class="ovr"))


def test_ece_zero_for_perfectly_calibrated_and_large_for_overconfident() -> None:
    y = np.array([0, 1] * 50)
    confident_wrong = np.column_stack([y * 0.99 + 0.005, 1 - (y * 0.99 + 0.005)])
    assert expected_calibration_error(y, confident_wrong) > 0.9
    exact = np.eye(2)[y]
    assert expected_calibration_error(y, exact) == pytest.approx(0.0)


def test_majority_baseline_row_and_best_marked() -> None:
    y, proba = _binary()
    maj = np.tile([0.8, 0.2], (len(y), 1))
    evals = [evaluate("majority", y, maj, classes=["good", "bad"]),
             evaluate("mlp", y, proba, classes=["good", "bad"])]
    table = comparison_table(evals, primary="roc_auc")
    assert "| majority |" in table and "| mlp |" in table
    assert evals[0].confusion.sum() == len(y)
    assert is_better(0.7, 0.6, metric="roc_auc") and is_better(0.1, 0.2, metric="log_loss")
    assert not is_better(float("nan"), 0.5, metric="roc_auc")
