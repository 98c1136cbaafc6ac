"""Live performance: metrics per version and week from outcomes; an alert when ROC-AUC drops."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import build_model_dir, register_dir  # noqa: E402
from watch_helpers import add_outcomes, fill_store  # noqa: E402

from loanrisk.config import get_settings  # noqa: E402
from loanrisk.errors import LoanriskError  # noqa: E402
from loanrisk.registry import Registry  # noqa: E402
from loanrisk.scoring.scorer import Scorer  # noqa: E402
from loanrisk.store import Store  # noqa: E402
from loanrisk.watch.performance import performance  # noqa: E402

NAME = "perf-fixture"


def test_live_auc_per_week_and_alert_on_drop(fresh_home: Path, tmp_path: Path) -> None:
    reg = Registry()
    d = build_model_dir(tmp_path / "v1", name=NAME, auc=0.8)
    v = register_dir(reg, d, name=NAME)
    scorer = Scorer.load(reg.download(NAME, v), version=v)
    store = Store(get_settings().resolved_database_url)
    with pytest.raises(LoanriskError, match="no outcomes yet"):
        performance(model=NAME)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    weeks = {"good": now - timedelta(days=15), "broken": now - timedelta(days=1)}
    for kind, start in weeks.items():
        recs = [{"income": float(rng.uniform(15000, 150000)), "dti": float(rng.uniform(0, 40)),
                 "purpose": str(rng.choice(["car", "debt", "other"]))} for _ in range(300)]
        decisions = scorer.score(recs)
        ids = fill_store(store, recs, decisions, model=NAME, version=v, sha256=scorer.sha256,
                         start=start)
        p = np.array([dd.probabilities["bad"] for dd in decisions])
        if kind == "good":  # outcomes the model ranks well
            bad = p + rng.normal(0, 0.05, len(p)) > np.quantile(p, 0.7)
        else:  # the world changed: the model no longer ranks outcomes
            bad = rng.uniform(size=len(p)) < 0.3
        add_outcomes(store, ids, ["defaulted" if b else "repaid" for b in bad])
    store.close()

    report = performance(model=NAME)
    assert [pp.labelled for pp in report.periods] == [300, 300]
    first, last = report.periods
    assert first.week < last.week and first.eval_roc_auc == pytest.approx(0.8)
    assert first.roc_auc > 0.8 and not first.alert
    assert last.roc_auc < 0.65 and last.alert and last.drop > 0.05
    assert len(report.alerts) == 1 and "below its evaluation-time 0.800" in report.alerts[0]
