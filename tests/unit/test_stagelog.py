"""Where a long learn run is and what each stage cost (time, peak memory), in the summary and
the report; and the bounds that keep a full book's checks in hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from loanrisk.datasets import load_bundled
from loanrisk.learn.pipeline import LearnOptions, learn
from loanrisk.learn.stagelog import StageLog, stages_markdown


def test_each_stage_has_its_own_time_and_peak_memory() -> None:
    log = StageLog(total=2, progress=False)
    with log.stage("small"):
        np.zeros(1_000).sum()
    with log.stage("big"):
        block = np.ones(300 * 2**20 // 8)  # 300 MiB touched
        block.sum()
        del block
    with log.stage("after"):
        pass
    small, big, after = log.records
    assert [r.name for r in log.records] == ["small", "big", "after"]
    assert all(r.seconds >= 0 for r in log.records)
    assert big.own_peak and small.own_peak  # Linux: the peak is reset at each stage
    assert big.peak_rss_mib - small.peak_rss_mib > 250  # type: ignore[operator]
    assert after.peak_rss_mib < big.peak_rss_mib - 250  # type: ignore[operator]
    assert log.peak_rss_mib() == big.peak_rss_mib
    table = "\n".join(stages_markdown(log.as_dicts()))
    assert "| big |" in table and "peak RSS MiB" in table


def test_learn_reports_every_stage(fresh_home: Path) -> None:
    df, schema = load_bundled("lending-club-default")
    res = learn(LearnOptions(name="staged", models=("majority", "linear"), sample=900,
                             register=False, progress=False), table=df, schema=schema)
    names = [s["name"] for s in res.summary["stages"]]
    assert names[:4] == ["read and validate", "profile", "leakage check", "split"]
    for want in ("preprocess", "fit majority", "fit linear", "calibrate linear",
                 "graph and evaluation linear", "serving cost", "monotone check",
                 "version files", "report"):
        assert want in names, want
    assert res.summary["peak_rss_mib"] > 50
    saved = json.loads((res.report_dir / "summary.json").read_text())
    assert [s["name"] for s in saved["stages"]] == names  # the report stage included
    report = (res.report_dir / "report.md").read_text()
    assert "## Where the time went" in report and "| fit linear |" in report
    assert saved["checked_rows"] == {"profile": 900, "leakage": 900, "table": 900}


def test_leakage_check_on_a_bounded_sample() -> None:
    from loanrisk.profile import leakage_check, leakage_rows

    df, schema = load_bundled("lending-club-grades")
    schema = schema.with_classes_from(df[schema.target]) if not schema.classes else schema
    whole = leakage_check(df, schema, seed=1)
    sampled = leakage_check(df, schema, seed=1, max_rows=4_000)
    assert leakage_rows(len(df), 4_000) == 4_000 and leakage_rows(100, 4_000) == 100
    # the leaks are found on the sample too (interest rate and sub-grade reveal the grade)
    assert {lk.attribute for lk in whole} == {lk.attribute for lk in sampled}
    assert whole, "the grade table's post-decision attributes leak"


def test_monotone_check_on_a_bounded_sample(fresh_home: Path) -> None:
    from loanrisk.learn.monotone import violations

    df, schema = load_bundled("lending-club-default")
    res = learn(LearnOptions(name="mono", models=("majority", "linear"), sample=1500,
                             register=False, progress=False), table=df, schema=schema)
    graph = (res.report_dir / "model" / "model.onnx").read_bytes()
    attrs = schema.feature_attributes()
    ev = df.sample(1000, random_state=3).reset_index(drop=True)
    out = violations(graph, train=df, ev=ev, attrs=attrs, task=schema.task, max_rows=300)
    assert (out["rows_checked"], out["rows"]) == (300, 1000)
    assert all(a["pairs"] <= 300 for a in out["attributes"].values())
    assert isinstance(pd.DataFrame(out["attributes"]).T, pd.DataFrame)


def _xy(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(np.int64)
    return X, y


def test_network_epochs_are_bounded_on_a_large_table() -> None:
    """An epoch trains on at most epoch_rows rows; on a smaller table nothing changes."""
    from loanrisk.models.mlp import MLPModel

    X, y = _xy(1200)
    Xv, yv = _xy(300, seed=1)
    kw = {"seed": 3, "task": "binary", "max_epochs": 4, "patience": 10, "progress": False,
          "hidden": (8,), "dropout": (0.0,)}
    whole = MLPModel(**kw, epoch_rows=None).fit(X, y, X_val=Xv, y_val=yv, n_classes=2)
    same = MLPModel(**kw, epoch_rows=5000).fit(X, y, X_val=Xv, y_val=yv, n_classes=2)
    np.testing.assert_array_equal(whole.predict_proba(Xv), same.predict_proba(Xv))
    bounded = MLPModel(**kw, epoch_rows=256, val_rows=100).fit(X, y, X_val=Xv, y_val=yv,
                                                                 n_classes=2)
    assert bounded.epochs_run_ == 4
    assert not np.array_equal(bounded.predict_proba(Xv), whole.predict_proba(Xv))


def test_boosting_rounds_sample_a_bounded_number_of_rows() -> None:
    from loanrisk.models.gbdt import GBDTModel

    X, y = _xy(2000)
    Xv, yv = _xy(400, seed=1)
    small = GBDTModel(seed=1, n_estimators=20, bag_rows=10_000).fit(X, y, X_val=Xv, y_val=yv,
                                                                     n_classes=2)
    big = GBDTModel(seed=1, n_estimators=20, bag_rows=500).fit(X, y, X_val=Xv, y_val=yv,
                                                                n_classes=2)
    assert small.bagging_ == 0.8  # the default fraction where the table is small
    assert big.bagging_ == 0.25 and big.params()["bagging_fraction_used"] == 0.25
