"""Preprocessor: statistics from train only, numpy and ONNX paths equal bit for bit."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from loanrisk.errors import DataError
from loanrisk.features import MISSING, OTHER, Preprocessor, frame_to_onnx_feed
from loanrisk.schema import Attribute

ATTRS = [Attribute("income", "numeric"), Attribute("dti", "numeric"),
         Attribute("has_car", "binary"), Attribute("own", "binary", categories=("no", "yes")),
         Attribute("state", "categorical"), Attribute("purpose", "categorical")]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(11, 0.6, n)
    income[rng.random(n) < 0.1] = np.nan
    purpose = rng.choice(["car", "debt", "home", "rare"], n, p=[0.4, 0.4, 0.199, 0.001])
    purpose = np.where(rng.random(n) < 0.05, None, purpose)
    return pd.DataFrame({
        "income": income, "dti": rng.normal(20, 8, n),
        "has_car": rng.integers(0, 2, n), "own": rng.choice(["yes", "no"], n),
        "state": rng.choice(["CA", "NY", "TX"], n), "purpose": purpose})


def onnx_features(pre: Preprocessor, df: pd.DataFrame) -> np.ndarray:
    sess = ort.InferenceSession(pre.onnx_graph().SerializeToString(),
                                providers=["CPUExecutionProvider"])
    return sess.run(["features"], frame_to_onnx_feed(df, ATTRS))[0]


def test_layout_and_statistics() -> None:
    train = frame(2000, 0)
    pre = Preprocessor(ATTRS, min_category_count=10).fit(train)
    assert pre.input_types_ == {"income": "float", "dti": "float", "has_car": "float",
                                "own": "string", "state": "string", "purpose": "string"}
    names = pre.feature_names_
    assert names[:4] == ["income", "dti", "has_car", f"income{MISSING}"]  # dti: no missing
    assert f"purpose={MISSING}" in names and "purpose=rare" not in names
    assert f"purpose={OTHER}" in names and len(names) == pre.n_features_out_
    assert pre.feature_sources_[3] == "income"
    num = {st["name"]: st for st in pre.numeric_}
    income = pd.to_numeric(train["income"]).astype(np.float32)
    assert num["income"]["median"] == pytest.approx(float(np.nanmedian(income)), rel=1e-6)
    assert num["income"]["hi"] == pytest.approx(np.nanpercentile(income, 99.5), rel=1e-6)
    assert num["has_car"]["lo"] is None  # binaries are never clipped
    X = pre.transform(train)
    assert X.dtype == np.float32 and X.shape == (2000, pre.n_features_out_)
    assert abs(X[:, 1].mean()) < 1e-4 and X[:, 1].std() == pytest.approx(1.0, abs=1e-3)


def test_unseen_rare_and_missing_categories_go_to_the_right_column() -> None:
    pre = Preprocessor(ATTRS).fit(frame(2000, 0))
    ev = frame(4, 1)
    ev["purpose"] = ["boat", "rare", None, "car"]
    ev["state"] = ["ZZ", "", np.nan, "CA"]  # state never missing in train: missing -> other
    X = pre.transform(ev)
    col = {n: i for i, n in enumerate(pre.feature_names_)}
    assert X[0, col[f"purpose={OTHER}"]] == 1 and X[1, col[f"purpose={OTHER}"]] == 1
    assert X[2, col[f"purpose={MISSING}"]] == 1 and X[3, col["purpose=car"]] == 1
    assert X[:3, col[f"state={OTHER}"]].tolist() == [1, 1, 1]
    for attr in ("purpose", "state", "own"):  # exactly one hot per categorical
        cols = [i for i, s in enumerate(pre.feature_sources_) if s == attr]
        assert np.all(X[:, cols].sum(axis=1) == 1)
    np.testing.assert_array_equal(onnx_features(pre, ev), X)


def test_train_statistics_do_not_move_when_eval_changes() -> None:
    train = frame(1500, 0)
    pre = Preprocessor(ATTRS).fit(train)
    state = json.dumps(pre.to_dict(), sort_keys=True)
    ev_a, ev_b = frame(300, 1), frame(300, 2)
    ev_b.loc[:, "income"] = 1e9  # an eval set far off the training range
    ev_b.loc[:, "state"] = "ZZ"
    Xa = pre.transform(ev_a)
    pre.transform(ev_b)
    assert json.dumps(pre.to_dict(), sort_keys=True) == state
    refit = Preprocessor(ATTRS).fit(train)  # refitting on the same train gives the same state
    assert json.dumps(refit.to_dict(), sort_keys=True) == state
    np.testing.assert_array_equal(refit.transform(ev_a), Xa)
    # rows are transformed independently of the other rows in the batch
    np.testing.assert_array_equal(pre.transform(ev_a.iloc[[5]]), Xa[[5]])


@pytest.mark.parametrize("scaling", ["standard", "robust", "none"])
def test_onnx_graph_equals_numpy_bit_for_bit(scaling: str) -> None:
    pre = Preprocessor(ATTRS, scaling=scaling).fit(frame(1500, 0))
    ev = frame(500, 3)
    ev.loc[:10, "dti"] = np.nan  # missing where train had none: median, no indicator
    ev.loc[11:12, "income"] = [np.inf, -1e30]
    ev.loc[13:14, "own"] = ["maybe", None]
    X = pre.transform(ev)
    assert np.isfinite(X).all()
    np.testing.assert_array_equal(onnx_features(pre, ev), X)


def test_state_round_trips_through_json() -> None:
    pre = Preprocessor(ATTRS, min_category_count=5).fit(frame(800, 0))
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    ev = frame(200, 4)
    np.testing.assert_array_equal(again.transform(ev), pre.transform(ev))
    assert again.feature_names_ == pre.feature_names_


def test_feed_values_and_errors() -> None:
    df = pd.DataFrame({"income": ["1000", None], "dti": [1.5, np.nan], "has_car": [True, False],
                       "own": ["yes", np.nan], "state": [3.0, np.nan], "purpose": [1, 2]})
    feed = frame_to_onnx_feed(df, ATTRS)
    assert feed["income"].dtype == np.float32 and feed["income"].shape == (2, 1)
    assert np.isnan(feed["income"][1, 0]) and feed["has_car"][:, 0].tolist() == [1.0, 0.0]
    assert feed["state"][:, 0].tolist() == ["3", ""] and feed["own"][1, 0] == ""
    with pytest.raises(DataError, match="'dti'"):
        Preprocessor(ATTRS).fit(df.drop(columns=["dti"]))
    with pytest.raises(DataError, match="'purpose'"):
        frame_to_onnx_feed(df.drop(columns=["purpose"]), ATTRS)


def test_string_binary_without_categories_is_a_string_input() -> None:
    attrs = [Attribute("flag", "binary"), Attribute("x", "numeric")]
    df = pd.DataFrame({"flag": ["y", "n"] * 20, "x": np.arange(40.0)})
    pre = Preprocessor(attrs).fit(df)
    assert pre.input_types_["flag"] == "string"
    assert "flag=y" in pre.feature_names_


def test_only_rare_categories_or_only_numbers() -> None:
    for attrs, df in (([Attribute("c", "categorical")], pd.DataFrame({"c": list("abcdefgh")})),
                      ([Attribute("x", "numeric")], pd.DataFrame({"x": [1.0, np.nan, 3.0]}))):
        pre = Preprocessor(attrs).fit(df)
        sess = ort.InferenceSession(pre.onnx_graph().SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        out = sess.run(["features"], frame_to_onnx_feed(df, attrs))[0]
        np.testing.assert_array_equal(out, pre.transform(df))
    assert pre.feature_names_ == ["x", f"x{MISSING}"]
