"""End-to-end `learn` on small samples of both bundled datasets, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loanrisk.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def _learn(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "summary.json"
    res = runner.invoke(app, ["learn", *args, "--sample", "3000", "--mlp-epochs", "40",
                              "--quiet", "--summary-json", str(out)])
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


def test_learn_grades_end_to_end(tmp_path: Path, fresh_home: Path) -> None:
    s = _learn(tmp_path, "--dataset", "lending-club-grades")
    assert s["task"] == "multiclass" and s["target"] == "grade"
    assert set(s["models"]) == {"majority", "linear", "mlp", "gbdt", "ensemble"}
    for m in s["models"].values():
        assert {"accuracy", "precision", "recall", "f1_macro", "f1_weighted", "roc_auc",
                "log_loss", "brier"} <= set(m)
    assert s["onnx_parity_max_abs_diff"] <= 1e-5
    assert "interest_rate" in [lk["attribute"] for lk in s["leakage"]]
    assert not any(lk["used"] for lk in s["leakage"])
    assert "interest_rate" not in s["features"]
    assert s["champion"]["version"] == 1 and s["champion"]["promoted"] is True
    # every model with skill beats always answering the majority class
    assert s["models"]["gbdt"]["roc_auc"] > s["models"]["majority"]["roc_auc"] + 0.1
    report = Path(s["report_dir"])
    for f in ("report.md", "confusion_matrices.png", "training_curves_mlp.png",
              "reliability.png", "profile.json", "summary.json"):
        assert (report / f).exists(), f
    assert "majority" in (report / "report.md").read_text()
    # what each graph costs to serve: one application with reasons, timed in this run
    for m in s["models"].values():
        assert 0 < m["score_p50_us"] <= m["score_p99_us"] and m["graph_kib"] > 0
    assert s["models"]["ensemble"]["graph_kib"] > s["models"]["linear"]["graph_kib"]
    assert "## Serving cost" in (report / "report.md").read_text()


def test_learn_default_binary(tmp_path: Path, fresh_home: Path) -> None:
    s = _learn(tmp_path, "--dataset", "lending-club-default", "--models", "majority,linear,mlp")
    assert s["task"] == "binary" and s["classes"] == ["good", "bad"]
    assert s["models"]["mlp"]["roc_auc"] > 0.6
    assert s["onnx_parity_max_abs_diff"] <= 1e-5


def test_allow_leaky_warns_in_every_report(tmp_path: Path, fresh_home: Path) -> None:
    s = _learn(tmp_path, "--dataset", "lending-club-grades", "--allow-leaky",
               "--models", "majority,linear,gbdt")
    assert s["warning"] and "interest_rate" in s["warning"]
    assert any(lk["attribute"] == "interest_rate" and lk["used"] for lk in s["leakage"])
    assert "WARNING" in (Path(s["report_dir"]) / "report.md").read_text()
    assert s["models"]["gbdt"]["f1_weighted"] > 0.9


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path: Path, fresh_home: Path) -> None:
    res = runner.invoke(app, ["learn", "--dataset", "no-such-data"])
    assert res.exit_code == 2
    assert "no-such-data" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["learn"])
    assert res.exit_code == 2 and "--dataset" in res.output


def test_latency_budget_is_checked_and_explained(tmp_path: Path, fresh_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from loanrisk.config import get_settings

    res = runner.invoke(app, ["learn", "--dataset", "lending-club-default", "--max-latency-us",
                              "-5"])
    assert res.exit_code == 2 and "--max-latency-us must be positive" in res.output
    # nothing can score in half a microsecond (the budget from the configuration this time):
    # a clear error naming the fastest model
    monkeypatch.setenv("LOANRISK_MAX_LATENCY_US", "0.5")
    get_settings.cache_clear()
    res = runner.invoke(app, ["learn", "--dataset", "lending-club-default", "--sample", "1500",
                              "--models", "majority,linear", "--quiet"])
    monkeypatch.delenv("LOANRISK_MAX_LATENCY_US")
    get_settings.cache_clear()
    assert res.exit_code == 2, res.output
    assert "no model scores one application within the latency budget of 0.5" in res.output
    assert "LOANRISK_MAX_LATENCY_US" in res.output
    assert "the fastest is linear" in res.output and "Traceback" not in res.output
    s = _learn(tmp_path, "--dataset", "lending-club-default", "--models", "majority,linear,gbdt",
               "--max-latency-us", "1e9")
    assert s["latency_budget_us"] == 1e9 and s["champion"]["model"] in ("linear", "gbdt")
    assert "within 1e+09 µs" in (Path(s["report_dir"]) / "report.md").read_text()
    # binary: every model also judged at its own decline threshold, as the lender uses it
    at = s["at_threshold"]
    assert set(at) == {"majority", "linear", "gbdt"}
    assert at["majority"]["declined_share"] in (0.0, 1.0)  # one score for all: all or none
    assert at["gbdt"]["declined_share"] > 0 and at["gbdt"]["bad_declined_share"] > 0
    assert 0 < at["gbdt"]["declined_share"] < 1
    report = Path(s["report_dir"])
    assert "## At the decision threshold" in (report / "report.md").read_text()
    assert (report / "confusion_at_threshold.png").exists()
    assert (report / "training_curves_gbdt.png").exists()
