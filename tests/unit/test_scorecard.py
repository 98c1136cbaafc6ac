"""The scorecard family, both fits (penalised fine bins, the default, and the classic regression on
WoE): bins monotone where asked, missing as its own bin, the cumulative logit, the ONNX graph's
parity and the points table."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.models import MODEL_NAMES, make_model

COLUMNS = [{"name": "income", "source": "income", "center": 50.0, "scale": 10.0},
           {"name": "dti", "source": "dti"},
           {"name": "income__missing__", "source": "income"},
           {"name": "home=own", "source": "home"}, {"name": "home=rent", "source": "home"},
           {"name": "home=__other__", "source": "home"}]


def _data(n: int = 1500, seed: int = 0, n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    income, dti = rng.normal(size=n), rng.normal(size=n)
    missing = rng.random(n) < 0.1
    home = rng.integers(0, 3, n)
    risk = -1.0 * income + 0.8 * np.sin(2 * dti) + 1.5 * missing + 0.5 * (home == 1)
    X = np.column_stack([np.where(missing, 0.0, income), dti, missing.astype(float),
                         home == 0, home == 1, home == 2]).astype(np.float32)
    latent = risk + rng.logistic(size=n)
    cuts = np.quantile(latent, np.linspace(0, 1, n_classes + 1)[1:-1])
    return X, np.searchsorted(cuts, latent).astype(np.int64)


def _fit(n_classes: int = 2, **kw: object):
    X, y = _data(n_classes=n_classes)
    model = make_model("scorecard", seed=0, task="binary" if n_classes == 2 else "multiclass",
                       columns=COLUMNS, monotone=[-1, 0, 0, 0, 0, 0], **kw)
    return model.fit(X, y, X_val=X[:10], y_val=y[:10], n_classes=n_classes), X


def test_registered() -> None:
    assert "scorecard" in MODEL_NAMES


@pytest.mark.parametrize("method", ["penalised", "woe"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_fit_probabilities_and_onnx_parity(n_classes: int, method: str) -> None:
    import onnxruntime as ort

    model, X = _fit(n_classes, method=method)
    p = model.predict_proba(X)
    assert p.shape == (len(X), n_classes)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert (p >= 0).all()
    sess = ort.InferenceSession(model.to_onnx(X.shape[1]).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    onnx_p = sess.run(["probabilities"], {"features": X})[0]
    assert np.max(np.abs(onnx_p - p)) <= 1e-5


@pytest.mark.parametrize("method", ["penalised", "woe"])
def test_monotone_bins_and_missing_bin(method: str) -> None:
    model, X = _fit(method=method)
    income = next(a for a in model.attrs_ if a.name == "income")
    assert len(income.edges) >= 2
    # income -1: more income never raises risk, so WoE (ln good/bad) never falls
    assert np.all(np.diff(income.woe) >= -1e-12)
    assert income.missing_col == 2 and income.count_missing > 0
    assert income.woe_missing < 0  # missing carries more risk in this data
    # a missing row takes the missing WoE whatever its imputed value
    row = X[:1].copy()
    row[0, 2] = 1.0
    for v in (-3.0, 3.0):
        row[0, 0] = v
        assert model._woe_matrix(row)[0, 0] == pytest.approx(income.woe_missing)
    # risk never rises with income, in the graph's own probabilities
    grid = np.repeat(X[:1], 50, axis=0)
    grid[:, 0], grid[:, 2] = np.linspace(-3, 3, 50), 0.0
    assert np.all(np.diff(model.predict_proba(grid)[:, 1]) <= 1e-12)
    assert (model.coef_ >= 0).all()


@pytest.mark.parametrize("method", ["penalised", "woe"])
def test_points_table(method: str) -> None:
    from loanrisk.models.scorecard_export import graph_order, points_matrix

    model, X = _fit(pdo=20.0, base_points=600.0, base_odds=50.0, method=method)
    table = model.points_table()
    assert (table["pdo"], table["base_points"], table["base_odds"]) == (20.0, 600.0, 50.0)
    assert table["method"] == method
    rows = table["bins"]
    assert {r["attribute"] for r in rows} == {"income", "dti", "home"}
    assert any(r["bin"] == "missing" for r in rows if r["attribute"] == "income")
    assert {r["bin"] for r in rows if r["attribute"] == "home"} == {"own", "rent", "__other__"}
    # edges in raw units (scaled column * 10 + 50)
    first = next(r for r in rows if r["attribute"] == "income")
    assert float(first["bin"].split(", ")[1].rstrip("]")) > 20
    # income is monotone (-1): its points never fall from one bin to the next
    inc = [r["points"] for r in rows if r["attribute"] == "income" and r["bin"] != "missing"]
    assert np.all(np.diff(inc) >= -0.01)
    # an applicant's points are rows of the table, and add up to offset + factor * ln(odds)
    x = X[:1]
    pts = points_matrix(model, x)[0]
    for a, p in zip(graph_order(model), pts, strict=True):
        assert any(abs(r["points"] - p) < 0.006 for r in rows if r["attribute"] == a.name)
    total = float(pts.sum())
    p_bad = model.predict_proba(x)[0, 1]
    expected = table["offset"] + table["factor"] * np.log((1 - p_bad) / p_bad)
    assert total == pytest.approx(expected, abs=0.05)
