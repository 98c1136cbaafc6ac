"""build_graph / OnnxModel / parity: one checked graph, raw attributes in, probabilities out."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from loanrisk.errors import DataError
from loanrisk.features import Preprocessor
from loanrisk.learn.export import OnnxModel, build_graph, parity, sha256_bytes
from loanrisk.models import make_model
from loanrisk.onnx_utils import IR_VERSION, ML_OPSET, OPSET, merge
from loanrisk.schema import Attribute

ATTRS = [Attribute("amount", "numeric"), Attribute("term", "categorical"),
         Attribute("joint", "binary", categories=("no", "yes")), Attribute("dti", "numeric")]
CLASSES = ["good", "bad"]


def data(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"amount": rng.gamma(2.0, 5000, n), "term": rng.choice(["36", "60"], n),
                       "joint": rng.choice(["yes", "no", None], n), "dti": rng.normal(18, 6, n)})
    df.loc[rng.random(n) < 0.1, "amount"] = np.nan
    y = (df["dti"] + rng.normal(0, 5, n) > 20).to_numpy(dtype=np.int64)
    return df, y


@pytest.fixture(scope="module")
def fitted() -> tuple[Preprocessor, object, onnx.ModelProto, pd.DataFrame]:
    df, y = data()
    pre = Preprocessor(ATTRS).fit(df.iloc[:400])
    X = pre.transform(df.iloc[:400])
    model = make_model("linear", seed=3, task="binary").fit(X, y[:400], X_val=X, y_val=y[:400],
                                                              n_classes=2)
    return pre, model, build_graph(pre, model, classes=CLASSES), df.iloc[400:]


def test_one_checked_graph_with_metadata(fitted: tuple) -> None:
    pre, _, graph, _ = fitted
    onnx.checker.check_model(graph, full_check=True)
    assert [i.name for i in graph.graph.input] == [a.name for a in ATTRS]
    assert [o.name for o in graph.graph.output] == ["probabilities"]
    assert graph.ir_version == IR_VERSION
    assert {o.domain: o.version for o in graph.opset_import} == {"": OPSET, "ai.onnx.ml": ML_OPSET}
    meta = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(meta["classes"]) == CLASSES and meta["model"] == "linear"
    assert json.loads(meta["feature_names"]) == pre.feature_names_
    assert json.loads(meta["inputs"])["joint"] == "string"


def test_onnx_model_from_bytes_and_path(fitted: tuple, tmp_path: Path) -> None:
    pre, model, graph, ev = fitted
    raw = graph.SerializeToString()
    (tmp_path / "model.onnx").write_bytes(raw)
    a, b = OnnxModel(raw), OnnxModel(tmp_path / "model.onnx")
    assert a.input_names == ["amount", "term", "joint", "dti"]
    assert a.input_types["term"] == "string" and a.classes == CLASSES
    assert a.sha256 == b.sha256 == sha256_bytes(raw) == hashlib.sha256(raw).hexdigest()
    pa = a.predict_proba(ev)
    assert pa.dtype == np.float64 and pa.shape == (len(ev), 2)
    np.testing.assert_array_equal(pa, b.predict_proba(ev))
    np.testing.assert_allclose(pa.sum(axis=1), 1.0, atol=1e-6)
    assert parity(a, pre, model, ev) <= 1e-5
    assert parity(a, pre, model, ev.iloc[:0]) == 0.0
    with pytest.raises(DataError, match="'term'"):
        a.predict_proba(ev.drop(columns=["term"]))


def test_extra_columns_and_odd_values_are_fine(fitted: tuple) -> None:
    pre, model, graph, ev = fitted
    odd = ev.copy()
    odd["unused"] = "x"
    odd["amount"] = odd["amount"].astype(object)
    odd.iloc[0, odd.columns.get_loc("amount")] = "not a number"  # -> missing
    odd.iloc[1, odd.columns.get_loc("term")] = "120"  # unseen -> other
    assert parity(OnnxModel(graph.SerializeToString()), pre, model, odd) <= 1e-5


def test_wrong_class_count_is_refused(fitted: tuple) -> None:
    pre, model, _, _ = fitted
    with pytest.raises(ValueError, match="3 classes"):
        build_graph(pre, model, classes=["a", "b", "c"])


def test_merge_keeps_names_apart() -> None:
    pre, _ = data()
    p = Preprocessor(ATTRS).fit(pre)
    majority = make_model("majority", seed=0, task="binary")
    majority.fit(np.zeros((4, 1), np.float32), np.array([0, 1, 1, 1]), X_val=None, y_val=None,
                 n_classes=2)
    merged = merge(p.onnx_graph(), majority.to_onnx(p.n_features_out_))
    names = [n for node in merged.graph.node for n in node.output]
    assert len(names) == len(set(names)) and "probabilities" in names
    assert all(n.startswith(("pre/", "model/")) or n in ("features", "probabilities")
               for n in names)


def test_export_stays_light() -> None:
    code = ("import sys, loanrisk.learn.export, loanrisk.features; "
            "heavy = {'torch', 'lightgbm', 'sklearn', 'onnx'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
