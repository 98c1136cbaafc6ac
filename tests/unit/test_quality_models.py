"""Tabular mlp (PLE + seed ensemble), the ensemble family and calibration: one graph, exact."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from loanrisk.learn.calibration import CalibratedModel, calibrate, fit_scaling
from loanrisk.models import make_model
from loanrisk.models.tabular import TabularMLPModel, fit_edges

FAST = {"max_epochs": 4, "progress": False}


def data(n_classes: int, n: int = 900, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two continuous columns, one 0/1 column; the class is a noisy cut of a score."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.uniform(-2, 2, n),
                         rng.integers(0, 2, n)]).astype(np.float32)
    s = X[:, 0] + np.sin(2 * X[:, 1]) + 0.5 * X[:, 2] + rng.normal(0, 0.3, n)
    y = np.digitize(s, np.quantile(s, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y.astype(np.int64)


def onnx_proba(model: object, X: np.ndarray) -> np.ndarray:
    graph = model.to_onnx(X.shape[1])  # type: ignore[attr-defined]
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"features": X})[0]


def fit(model: object, X: np.ndarray, y: np.ndarray, k: int) -> object:
    return model.fit(X[:600], y[:600], X_val=X[600:750], y_val=y[600:750],  # type: ignore
                     n_classes=k)


def test_tree_bins_snap_to_observed_values_around_each_split() -> None:
    x = np.repeat([1.0, 2.0, 5.0, 6.0], 50)
    y = (x > 3).astype(np.int64)
    edges = fit_edges(x, y, n_bins=4, method="tree", seed=0)
    assert {1.0, 2.0, 5.0, 6.0} == set(edges.tolist())  # the split 3.5 became [2, 5]
    q = fit_edges(np.arange(100.0), y[:100], n_bins=4, method="quantile", seed=0)
    assert q[0] == 0 and q[-1] == 99 and len(q) == 5


@pytest.mark.parametrize("k", [2, 4])
def test_tabular_mlp_is_one_graph_with_parity(k: int) -> None:
    X, y = data(k)
    model = fit(TabularMLPModel(seed=0, task="binary" if k == 2 else "multiclass",
                                n_bins=8, members=2, **FAST), X, y, k)
    assert len(model.nets_) == 2 and model.ple_cols_.tolist().count(2) == 0  # 0/1 left alone
    E = model.encode(X)
    assert E.shape[1] == 3 + len(model.ple_cols_) and 0 <= E[:, 3:].min() <= E[:, 3:].max() <= 1
    p = model.predict_proba(X[750:])
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    assert np.abs(onnx_proba(model, X[750:]) - p).max() <= 1e-5


def test_ensemble_averages_members_in_one_graph() -> None:
    X, y = data(3)
    mlp = fit(make_model("mlp", seed=0, task="multiclass", design="reference", **FAST), X, y, 3)
    lin = fit(make_model("linear", seed=0, task="multiclass"), X, y, 3)
    ens = fit(make_model("ensemble", seed=0, task="multiclass", members=[mlp, lin]), X, y, 3)
    w = ens.weights_
    assert abs(sum(w) - 1) < 1e-9
    expect = w[0] * mlp.predict_proba(X[750:]) + w[1] * lin.predict_proba(X[750:])
    np.testing.assert_allclose(ens.predict_proba(X[750:]), expect, atol=1e-6)
    assert np.abs(onnx_proba(ens, X[750:]) - expect).max() <= 1e-5


def test_temperature_is_folded_into_the_reference_mlp() -> None:
    X, y = data(3)
    mlp = fit(make_model("mlp", seed=0, task="multiclass", design="reference", **FAST), X, y, 3)
    z = mlp.logits(X[750:])
    cal = calibrate(mlp, X_val=X[600:750], y_val=y[600:750])
    assert cal is mlp and cal.calibration_["folded"] and cal.calibration_["method"] == "temperature"
    np.testing.assert_allclose(mlp.logits(X[750:]), z * np.float32(cal.calibration_["a"]),
                               rtol=1e-4, atol=1e-5)
    assert np.abs(onnx_proba(mlp, X[750:]) - mlp.predict_proba(X[750:])).max() <= 1e-5


@pytest.mark.parametrize("k", [2, 3])
def test_calibrated_model_keeps_parity_and_binary_ranking(k: int) -> None:
    from sklearn.metrics import log_loss, roc_auc_score

    X, y = data(k)
    gbdt = fit(make_model("gbdt", seed=0, task="binary" if k == 2 else "multiclass",
                          n_estimators=20), X, y, k)
    before = gbdt.predict_proba(X[750:])
    cal = calibrate(gbdt, X_val=X[600:750], y_val=y[600:750])
    assert isinstance(cal, CalibratedModel) and cal.name == "gbdt"
    assert cal.calibration_["method"] == ("platt" if k == 2 else "temperature")
    after = cal.predict_proba(X[750:])
    assert np.abs(onnx_proba(cal, X[750:]) - after).max() <= 1e-5
    if k == 2:  # a > 0: the ranking, hence ROC-AUC, is unchanged
        assert roc_auc_score(y[750:], after[:, 1]) == pytest.approx(
            roc_auc_score(y[750:], before[:, 1]), abs=1e-9)
    assert log_loss(y[600:750], cal.predict_proba(X[600:750])) <= log_loss(
        y[600:750], np.clip(gbdt.predict_proba(X[600:750]), 1e-7, 1)) + 1e-9


def test_fit_scaling_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, size=(4000, 3))
    p = np.exp(0.5 * z) / np.exp(0.5 * z).sum(1, keepdims=True)  # true temperature: a = 0.5
    y = np.array([rng.choice(3, p=row) for row in p])
    a, b = fit_scaling(z, y)
    assert a == pytest.approx(0.5, abs=0.08) and b == 0.0
