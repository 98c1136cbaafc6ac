"""The mlp: one logit and one sigmoid for binary, determinism, early stopping, ONNX parity."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from loanrisk.models.mlp import MLPModel
from loanrisk.models.train import Dropout, MLPConfig, class_weights, evaluate, make_loss

FAST = {"max_epochs": 15, "progress": False}


def easy(n_classes: int, n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eight features; the class is a noisy cut of a linear score (balanced classes)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    score = X[:, 0] + 0.5 * X[:, 1] - X[:, 2] + rng.normal(0, 0.3, n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y.astype(np.int64)


def fitted(n_classes: int, **over: object) -> tuple[MLPModel, np.ndarray, np.ndarray]:
    X, y = easy(n_classes)
    task = "binary" if n_classes == 2 else "multiclass"
    model = MLPModel(task=task, **{"seed": 0, **FAST, **over})  # type: ignore[arg-type]
    model.fit(X[:800], y[:800], X_val=X[800:1000], y_val=y[800:1000], n_classes=n_classes)
    return model, X[1000:], y[1000:]


def test_binary_has_one_logit_and_applies_the_sigmoid_once() -> None:
    model, X, _ = fitted(2, max_epochs=2)
    last = model.linear_layers()[-1]
    assert last.out_features == 1
    z = model.logits(X)
    assert z.shape == (len(X), 1)
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z[:, 0])),
                               rtol=1e-12)
    with torch.no_grad():  # a network whose output is the constant logit 2
        last.weight.zero_()
        last.bias.fill_(2.0)
    p = model.predict_proba(X)
    sig = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(p, np.tile([1 - sig, sig], (len(X), 1)), atol=1e-7)
    assert abs(p[0, 1] - 1 / (1 + np.exp(-sig))) > 0.1  # not sigmoid(sigmoid(logit))
    onnx_p = ort.InferenceSession(model.to_onnx(8).SerializeToString()).run(
        None, {"features": X})[0]
    np.testing.assert_allclose(onnx_p, p, atol=1e-6)


def test_multiclass_probabilities_are_a_softmax() -> None:
    model, X, _ = fitted(4, max_epochs=2)
    assert model.linear_layers()[-1].out_features == 4
    p = model.predict_proba(X)
    assert p.dtype == np.float64 and p.shape == (len(X), 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(p, torch.softmax(torch.from_numpy(model.logits(X)), 1).numpy(),
                               atol=1e-12)


def test_same_seed_same_model_and_another_seed_differs() -> None:
    a, X, _ = fitted(3)
    b, _, _ = fitted(3)
    assert a.history_ == b.history_
    for (ka, va), (kb, vb) in zip(a.net_.state_dict().items(), b.net_.state_dict().items(),
                                  strict=True):
        assert ka == kb and torch.equal(va, vb)
    c, _, _ = fitted(3, seed=1)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_loss_goes_down_and_history_is_recorded() -> None:
    model, _, _ = fitted(3)
    h = model.history_
    assert h is not None
    assert set(h) == {"train_loss", "val_loss", "train_acc", "val_acc", "lr"}
    assert all(len(v) == model.epochs_run_ for v in h.values())
    assert h["train_loss"][-1] < 0.7 * h["train_loss"][0]
    assert h["val_loss"][-1] < h["val_loss"][0]
    assert h["lr"][0] == pytest.approx(0.012)
    assert model.train_seconds_ > 0 and model.samples_per_s_ > 0


def test_early_stopping_restores_the_best_weights() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    y = rng.integers(0, 2, 300)  # pure noise: the network can only overfit, val loss rises
    model = MLPModel(seed=0, task="binary", hidden=(64, 64), dropout=(0.0, 0.0), lr=0.01,
                     batch_size=32, patience=5, lr_patience=100, max_epochs=200, progress=False)
    model.fit(X[:200], y[:200], X_val=X[200:], y_val=y[200:], n_classes=2)
    h = model.history_
    assert h is not None
    assert model.epochs_run_ < 200  # stopped early
    assert model.best_epoch_ == model.epochs_run_ - 5
    assert h["val_loss"][-1] > h["val_loss"][model.best_epoch_ - 1]
    # the weights in place are those of the best epoch: their val loss is the best one
    loss_fn = make_loss(model.config, n_outputs=1,
                        weights=torch.tensor(model.class_weights_, dtype=torch.float32))
    val_loss, _ = evaluate(model.net_, torch.from_numpy(X[200:]), torch.from_numpy(y[200:]),
                           loss_fn=loss_fn)
    assert val_loss == pytest.approx(min(h["val_loss"]), abs=1e-6)


def test_class_weights() -> None:
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    inverse = class_weights(y, 4, power=1.0).numpy()
    np.testing.assert_allclose(inverse, [100 / 180, 100 / 90, 100 / 30, 0.0], rtol=1e-6)
    root = class_weights(y, 4, power=0.5).numpy()
    raw = np.sqrt([100 / 60, 100 / 30, 100 / 10])
    np.testing.assert_allclose(root[:3], raw * 100 / (raw * [60, 30, 10]).sum(), rtol=1e-6)
    for w in (inverse, root):  # the mean weight over the rows is 1
        assert (w[:3] * [60, 30, 10]).sum() == pytest.approx(100, rel=1e-6)
    assert np.all(class_weights(y, 3, power=0.0).numpy() == pytest.approx(1.0))
    model, _, _ = fitted(3, max_epochs=1)
    np.testing.assert_allclose(model.class_weights_, class_weights(easy(3)[1][:800], 3,
                                                                   power=0.5).numpy())


@pytest.mark.parametrize("n_classes", [2, 5])
def test_onnx_matches_predict_proba(n_classes: int) -> None:
    model, X, _ = fitted(n_classes, max_epochs=5)
    graph = model.to_onnx(8)
    assert [i.name for i in graph.graph.input] == ["features"]
    assert [o.name for o in graph.graph.output] == ["probabilities"]
    assert {o.domain: o.version for o in graph.opset_import}[""] == 17
    assert {n.op_type for n in graph.graph.node} >= {"Gemm", "Relu"}
    got = ort.InferenceSession(graph.SerializeToString()).run(None, {"features": X})[0]
    assert got.shape == (len(X), n_classes)
    assert np.abs(got - model.predict_proba(X)).max() <= 1e-5
    with pytest.raises(ValueError, match="features"):
        model.to_onnx(9)


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_focal_loss(n_outputs: int) -> None:
    logits = torch.randn(50, n_outputs, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, max(n_outputs, 2), (50,), generator=torch.Generator().manual_seed(1))
    w = class_weights(y, max(n_outputs, 2))
    ce = make_loss(MLPConfig(), n_outputs=n_outputs, weights=w)(logits, y)
    focal0 = make_loss(MLPConfig(loss="focal", focal_gamma=0.0), n_outputs=n_outputs,
                       weights=w)(logits, y)
    focal2 = make_loss(MLPConfig(loss="focal"), n_outputs=n_outputs, weights=w)(logits, y)
    assert focal0.item() == pytest.approx(ce.item(), rel=1e-5)  # gamma 0 is cross-entropy
    assert focal2.item() < ce.item()
    model, X, y_te = fitted(3, loss="focal")
    assert model.params()["loss"] == "focal"
    assert (model.predict_proba(X).argmax(1) == y_te).mean() > 0.6


@pytest.mark.parametrize("over", [{}, {"imbalance": "sampler"}, {"imbalance": "none"}])
def test_beats_the_majority_class(over: dict[str, str]) -> None:
    model, X, y = fitted(3, **over)
    majority = np.bincount(y).max() / len(y)
    assert (model.predict_proba(X).argmax(1) == y).mean() > majority + 0.3


def test_dropout_keeps_the_share_and_the_mean() -> None:
    drop = Dropout(0.3)
    x = torch.ones(200, 500)
    out = drop.train()(x)
    assert (out > 0).float().mean().item() == pytest.approx(0.7, abs=0.01)
    assert out.mean().item() == pytest.approx(1.0, abs=0.02)
    assert drop.eval()(x) is x


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown mlp option"):
        MLPModel(hiden=(8,))
    with pytest.raises(ValueError, match="imbalance"):
        MLPModel(imbalance="smote")
    model = MLPModel(seed=3, task="binary", hidden=[8, 4], dropout=[0.1, 0.1])
    assert model.params()["hidden"] == (8, 4) and model.params()["seed"] == 3
