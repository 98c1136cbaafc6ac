"""Drift monitoring: debt-to-income +30% is flagged, an unshifted sample is not (PSI < 0.1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from watch_helpers import fill_store, home, records

from loanrisk.datasets import load_bundled
from loanrisk.learn.pipeline import LearnOptions, learn
from loanrisk.scoring.scorer import Scorer
from loanrisk.store import Store
from loanrisk.watch.monitor import DriftReport, drift_gauges, monitor, psi

# LightGBM with 2 threads on 2 shared cores spins for ~10x longer; tests use one
ONE_THREAD = {"n_jobs": 1}
NAME = "grades-drift"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real champion (gbdt on 1,500 rows) and 2,000 other rows of the same data."""
    root = tmp_path_factory.mktemp("drift")
    with home(root / "home"):
        res = learn(LearnOptions(dataset="lending-club-grades", name=NAME, sample=1500,
                                 models=("majority", "gbdt"), progress=False,
                                 gbdt=ONE_THREAD))
        assert res.version is not None
        model_dir = res.report_dir / "model"
        manifest = json.loads((model_dir / "manifest.json").read_text())
        df, _ = load_bundled("lending-club-grades")
        fresh = df.sample(2000, random_state=7).reset_index(drop=True)
        yield {"root": root, "version": res.version.version, "manifest": manifest,
               "scorer": Scorer.load(model_dir, version=res.version.version), "fresh": fresh}


def _stored_report(served: dict[str, Any], frame: pd.DataFrame, tag: str,
                   url: str | None = None) -> DriftReport:
    manifest, scorer = served["manifest"], served["scorer"]
    recs = records(frame, manifest["features"])
    url = url or f"sqlite:///{served['root'] / f'{tag}.db'}"
    store = Store(url)
    fill_store(store, recs, scorer.score(recs), model=NAME, version=served["version"],
               sha256=scorer.sha256)
    store.close()
    with home(served["root"] / "home"):
        from loanrisk.config import get_settings

        settings = get_settings().model_copy(update={"database_url": url})
        return monitor(model=NAME, since="7d", settings=settings,
                       out_dir=served["root"] / f"report-{tag}")


def test_psi_is_zero_for_equal_shares_and_grows_with_shift() -> None:
    e = np.array([0.2, 0.3, 0.5])
    assert psi(e, e) == pytest.approx(0.0)
    assert psi(e, np.array([0.3, 0.3, 0.4])) < psi(e, np.array([0.5, 0.3, 0.2]))
    assert np.isfinite(psi(e, np.array([0.0, 0.5, 0.5])))  # empty bin: epsilon, not infinity


def test_unshifted_sample_is_not_flagged(served: dict[str, Any]) -> None:
    report = _stored_report(served, served["fresh"], "same")
    gauges = drift_gauges(report)
    assert report.rows == 2000 and not report.sampled
    assert "__score__" in gauges and "debt_to_income" in gauges
    worst = max(gauges, key=gauges.__getitem__)
    assert gauges[worst] < 0.1, f"{worst}: {gauges[worst]:.3f}"
    assert report.level == "ok"
    saved = json.loads(Path(report.files["json"]).read_text())
    assert drift_gauges(saved) == pytest.approx(gauges)
    assert Path(report.files["plot"]).stat().st_size > 1000


def test_debt_to_income_up_30_percent_is_flagged(served: dict[str, Any]) -> None:
    shifted = served["fresh"].copy()
    shifted["debt_to_income"] = shifted["debt_to_income"] * 1.3
    report = _stored_report(served, shifted, "shifted")
    dti = report.attributes["debt_to_income"]
    assert dti.psi >= 0.1 and dti.level in ("watch", "alert"), dti.psi
    assert report.level in ("watch", "alert")
    others = {k: v.psi for k, v in report.attributes.items()
              if k not in ("debt_to_income", "__score__")}
    assert max(others.values()) < 0.1  # only the shifted attribute moved


def test_large_windows_are_sampled(served: dict[str, Any]) -> None:
    url = f"sqlite:///{served['root'] / 'same.db'}"
    with home(served["root"] / "home"):
        from loanrisk.config import get_settings

        settings = get_settings().model_copy(update={"database_url": url})
        report = monitor(model=NAME, since="7d", settings=settings, max_rows=500,
                         out_dir=served["root"] / "report-sampled")
    assert report.sampled and report.window_rows == 2000
    assert 300 <= report.rows <= 500


@pytest.mark.postgres
def test_drift_and_replay_on_postgresql(served: dict[str, Any]) -> None:
    """The same watch queries against a real PostgreSQL store (JSONB extraction, casts)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
    from helpers import fresh_pg_schema

    from loanrisk.watch.replay import replay

    with fresh_pg_schema() as url:
        shifted = served["fresh"].copy()
        shifted["debt_to_income"] = shifted["debt_to_income"] * 1.3
        report = _stored_report(served, shifted, "pg", url=url)
        with home(served["root"] / "home"):
            from loanrisk.config import get_settings

            settings = get_settings().model_copy(update={"database_url": url})
            again = replay(model=NAME, since="7d", settings=settings)
        assert report.rows == 2000 and report.attributes["debt_to_income"].psi >= 0.1
        assert again.checked == 2000 and again.identical == 2000, again.mismatches[:3]
