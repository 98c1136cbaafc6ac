"""`loanrisk schema infer` then `loanrisk learn --data --schema` on loan tables loanrisk never saw.

Two tables made here with different shapes: a binary target with missing values, a free-text
column and an identifier; a multiclass target (four risk bands) with other column names, Parquet.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loanrisk.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()
FAST = ["--mlp-epochs", "6", "--quiet", "--no-promote"]


def binary_table(n: int = 900, seed: int = 0) -> pd.DataFrame:
    """Repaid / defaulted loans; income and utilisation have gaps; notes are free text."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.8, 0.5, n)
    util = rng.uniform(0, 1, n)
    score = -0.6 * np.log(income / 5e4) + 2.0 * util + rng.normal(0, 0.7, n)
    outcome = np.where(score > np.quantile(score, 0.8), "defaulted", "repaid")
    income[rng.random(n) < 0.1] = np.nan
    util[rng.random(n) < 0.05] = np.nan
    words = ["car", "home", "school", "wedding", "debt", "medical", "holiday", "roof"]
    return pd.DataFrame({
        "loan_id": [f"L{i:05d}" for i in range(n)],
        "income": income, "utilisation": util,
        "region": rng.choice(["north", "south", "east", "west", None], n),
        "notes": [" ".join(rng.choice(words, 4)) + f" #{i}" for i in range(n)],
        "outcome": outcome})


def multiclass_table(n: int = 1000, seed: int = 1) -> pd.DataFrame:
    """Four risk bands from a score of other attributes (no missing values)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 70, n).astype(float)
    late = rng.poisson(0.5, n).astype(float)
    ratio = rng.uniform(0, 0.6, n)
    s = 3 * ratio + 0.8 * late - 0.02 * age + rng.normal(0, 0.4, n)
    band = np.digitize(s, np.quantile(s, [0.3, 0.6, 0.85]))
    return pd.DataFrame({"AgeYears": age, "LatePayments": late, "DebtRatio": ratio,
                         "Channel": rng.choice(["web", "branch", "phone"], n),
                         "RiskBand": np.array(["b1_low", "b2_mid", "b3_high", "b4_severe"])[band]})


def _infer_and_learn(tmp_path: Path, data: Path, target: str, *extra: str) -> dict:
    schema = tmp_path / "schema.json"
    res = runner.invoke(app, ["schema", "infer", str(data), "--target", target, "-o", str(schema)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "summary.json"
    res = runner.invoke(app, ["learn", "--data", str(data), "--schema", str(schema),
                              "--summary-json", str(out), *FAST, *extra])
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


def test_binary_table_with_missing_values_and_text(tmp_path: Path, fresh_home: Path) -> None:
    path = tmp_path / "loans.csv"
    binary_table().to_csv(path, index=False)
    s = _infer_and_learn(tmp_path, path, "outcome", "--repeats", "2")
    assert s["task"] == "binary" and s["classes"] == ["repaid", "defaulted"]
    assert "notes" not in s["features"] and "loan_id" not in s["features"]
    assert {"income", "utilisation", "region"} <= set(s["features"])
    assert set(s["models"]) == {"majority", "linear", "mlp", "gbdt", "ensemble"}
    for m in s["models"].values():  # means over two splits, the spread beside each
        assert "roc_auc_std" in m and "ece_std" in m
    assert s["repeats"]["n"] == 2 and s["repeats"]["best"] == s["champion"]["model"]
    assert s["models"][s["champion"]["model"]]["roc_auc"] > 0.7
    assert s["onnx_parity_max_abs_diff"] <= 1e-5
    manifest = json.loads((Path(s["report_dir"]) / "model" / "manifest.json").read_text())
    assert 0 < manifest["decision"]["decline_threshold"] <= 1
    assert "why" in s["repeats"] and "split" in s["repeats"]["why"]


def test_multiclass_table_with_other_names(tmp_path: Path, fresh_home: Path) -> None:
    path = tmp_path / "bands.parquet"
    multiclass_table().to_parquet(path, index=False)
    s = _infer_and_learn(tmp_path, path, "RiskBand", "--models", "majority,linear,mlp")
    assert s["task"] == "multiclass" and len(s["classes"]) == 4
    assert set(s["features"]) == {"AgeYears", "LatePayments", "DebtRatio", "Channel"}
    assert s["models"]["mlp"]["roc_auc"] > 0.75
    assert s["onnx_parity_max_abs_diff"] <= 1e-5
    assert s["calibration"]["mlp"]["method"] == "temperature"
    schema = str(tmp_path / "schema.json")
    res = runner.invoke(app, ["tune", "--model", "linear", "--trials", "2", "--data", str(path),
                              "--schema", schema, "--quiet"])
    assert res.exit_code == 0, res.output
    assert (fresh_home / "tuned" / "bands" / "linear.json").exists()
    out = tmp_path / "eval.json"
    res = runner.invoke(app, ["evaluate", "--data", str(path), "--schema", schema, "--repeats",
                              "2", "--models", "linear,gbdt", "--quiet", "--summary-json",
                              str(out)])
    assert res.exit_code == 0, res.output
    e = json.loads(out.read_text())
    assert e["repeats"]["n"] == 2 and "roc_auc_std" in e["models"]["gbdt"]
    assert "linear" in e["tuned_from"]  # learn and evaluate use what tune saved
    assert e["champion"]["version"] is None  # evaluate registers nothing
