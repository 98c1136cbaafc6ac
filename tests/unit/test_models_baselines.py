"""majority, linear and gbdt: the ONNX graph gives the Python model's probabilities (<= 1e-5)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from loanrisk.features import Preprocessor
from loanrisk.learn.export import OnnxModel, build_graph, parity
from loanrisk.models import LoanModel, make_model
from loanrisk.schema import Attribute

TOL = 1e-5
FAST = {"gbdt": {"n_estimators": 60}}
GRADE_CATEGORICAL = ["state", "homeownership", "verified_income", "loan_purpose",
                     "application_type", "verification_income_joint", "emp_title"]
GRADE_DROP = {"grade", "sub_grade", "interest_rate", "installment", "loan_status", "issue_month",
              "balance", "paid_total", "paid_principal", "paid_interest", "paid_late_fees",
              "initial_listing_status", "disbursement_method"}


def synthetic(n_classes: int, n: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray,
                                                                   list[Attribute]]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(2.0, n),
                       "c": rng.choice(["x", "y", "z"], n), "d": rng.integers(0, 2, n)})
    df.loc[rng.random(n) < 0.1, "b"] = np.nan
    score = df["a"] + 0.3 * df["b"].fillna(0) + (df["c"] == "x") + rng.normal(0, 0.5, n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    attrs = [Attribute("a", "numeric"), Attribute("b", "numeric"),
             Attribute("c", "categorical"), Attribute("d", "binary")]
    return df, y.astype(np.int64), attrs


@cache
def grades() -> tuple[pd.DataFrame, np.ndarray, list[Attribute]]:
    """A 3000-row sample of the bundled grade data, target ``grade`` (A..G)."""
    path = resources.files("loanrisk") / "data" / "loans_full_schema.csv.gz"
    df = pd.read_csv(str(path)).sample(3000, random_state=1).reset_index(drop=True)
    y = df["grade"].map({g: i for i, g in enumerate("ABCDEFG")}).to_numpy(dtype=np.int64)
    attrs = [Attribute(c, "categorical" if c in GRADE_CATEGORICAL else "numeric")
             for c in df.columns if c not in GRADE_DROP]
    return df, y, attrs


def fit_and_export(name: str, df: pd.DataFrame, y: np.ndarray, attrs: list[Attribute],
                   n_classes: int) -> tuple[Preprocessor, LoanModel, OnnxModel, pd.DataFrame]:
    n = len(df)
    tr, va, ev = np.arange(0, int(0.6 * n)), np.arange(int(0.6 * n), int(0.7 * n)), \
        np.arange(int(0.7 * n), n)
    pre = Preprocessor(attrs).fit(df.iloc[tr])
    model = make_model(name, seed=0, task="binary" if n_classes == 2 else "multiclass",
                       **FAST.get(name, {}))
    model.fit(pre.transform(df.iloc[tr]), y[tr], X_val=pre.transform(df.iloc[va]), y_val=y[va],
              n_classes=n_classes)
    classes = [f"k{i}" for i in range(n_classes)]
    return pre, model, OnnxModel(build_graph(pre, model, classes=classes).SerializeToString()), \
        df.iloc[ev].copy()


@pytest.mark.parametrize("name", ["majority", "linear", "gbdt"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_parity_on_synthetic_data(name: str, n_classes: int) -> None:
    df, y, attrs = synthetic(n_classes)
    pre, model, onnx_model, ev = fit_and_export(name, df, y, attrs, n_classes)
    assert isinstance(model, LoanModel)
    proba = onnx_model.predict_proba(ev)
    assert proba.shape == (len(ev), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert parity(onnx_model, pre, model, ev) <= TOL


@pytest.mark.parametrize("name", ["majority", "linear", "gbdt"])
def test_parity_on_bundled_grades_with_missing_and_unseen_values(name: str) -> None:
    df, y, attrs = grades()
    pre, model, onnx_model, ev = fit_and_export(name, df, y, attrs, 7)
    ev.loc[ev.index[:20], "state"] = "Atlantis"  # unseen categories
    ev.loc[ev.index[20:40], "homeownership"] = None
    ev.loc[ev.index[40:60], ["annual_income", "debt_to_income"]] = np.nan  # missing numerics
    assert ev["months_since_last_delinq"].isna().any()
    assert parity(onnx_model, pre, model, ev) <= TOL
    np.testing.assert_allclose(onnx_model.predict_proba(ev).sum(axis=1), 1.0, atol=1e-6)


def test_linear_binary_uses_one_logit_and_matches_sklearn() -> None:
    df, y, attrs = synthetic(2)
    pre, model, onnx_model, ev = fit_and_export("linear", df, y, attrs, 2)
    assert model.coef_.shape == (1, pre.n_features_out_)  # type: ignore[attr-defined]
    graph = model.to_onnx(pre.n_features_out_)
    weights = {t.name: t for t in graph.graph.initializer}
    assert list(weights["W"].dims) == [pre.n_features_out_, 1]
    X = pre.transform(ev)
    sk = model.sgd_.predict_proba(X)  # type: ignore[attr-defined]
    np.testing.assert_allclose(model.predict_proba(X), sk, atol=1e-12)


def test_linear_multiclass_all_zero_rows_become_uniform_like_sklearn() -> None:
    df, y, attrs = synthetic(3)
    pre, model, onnx_model, ev = fit_and_export("linear", df, y, attrs, 3)
    ev = ev.head(3).copy()
    ev["a"] = [1e30, -1e30, 0.0]  # clipped by the preprocessor: stays finite
    coef, bias = model.coef_, model.intercept_  # type: ignore[attr-defined]
    X = np.zeros((2, pre.n_features_out_), dtype=np.float32)
    X[0] = np.linalg.pinv(coef) @ (-1e4 - bias)  # every OvR logit near -1e4
    p = model.predict_proba(X)
    sk = model.sgd_.predict_proba(X.astype(np.float64))  # type: ignore[attr-defined]
    np.testing.assert_allclose(p, sk, atol=1e-12)
    np.testing.assert_allclose(p[0], [1 / 3] * 3)  # every sigmoid underflowed to 0
    sess = ort.InferenceSession(model.to_onnx(pre.n_features_out_).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(["probabilities"], {"features": X})[0], p, atol=1e-7)
    assert parity(onnx_model, pre, model, ev) <= TOL


def test_majority_predicts_the_training_prior() -> None:
    y = np.array([0, 0, 0, 1, 2, 2, 0, 0, 1, 0])
    model = make_model("majority", seed=0, task="multiclass")
    model.fit(np.zeros((10, 2), np.float32), y, X_val=np.zeros((0, 2)), y_val=y[:0], n_classes=4)
    p = model.predict_proba(np.zeros((3, 2), np.float32))
    np.testing.assert_allclose(p[0], [0.6, 0.2, 0.2, 0.0], atol=1e-7)
    assert p.shape == (3, 4)


def test_class_missing_from_train_keeps_its_column() -> None:
    df, y, attrs = synthetic(3)
    y = np.where(y == 1, 0, y)  # class 1 never occurs
    for name in ("linear", "gbdt"):
        pre, model, onnx_model, ev = fit_and_export(name, df, y, attrs, 3)
        proba = onnx_model.predict_proba(ev)
        assert proba.shape[1] == 3 and np.all(proba[:, 1] == 0)
        assert parity(onnx_model, pre, model, ev) <= TOL


def test_gbdt_monotone_constraints_and_params() -> None:
    df, y, attrs = synthetic(2)
    pre = Preprocessor(attrs).fit(df)
    mono = [1 if s == "a" else 0 for s in pre.feature_sources_]
    model = make_model("gbdt", seed=0, task="binary", monotone=mono, n_estimators=40)
    X = pre.transform(df)
    model.fit(X, y, X_val=X[:200], y_val=y[:200], n_classes=2)
    grid = np.repeat(X[:1], 50, axis=0)
    grid[:, 0] = np.linspace(-3, 3, 50)
    assert np.all(np.diff(model.predict_proba(grid)[:, 1]) >= -1e-12)
    assert model.params()["monotone"] is True and "best_iteration" in model.params()
    with pytest.raises(ValueError, match="monotone"):
        make_model("gbdt", seed=0, task="binary", monotone=[1]).fit(
            X, y, X_val=X, y_val=y, n_classes=2)


def test_make_model_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        make_model("forest", seed=0, task="binary")
