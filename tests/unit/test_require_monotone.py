"""`learn --require-monotone`: the champion only among models with no monotone violation; and
information value in the profile with its bands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loanrisk.profile import bad_of, information_value, iv_band


@pytest.mark.parametrize(("iv", "band"), [(0.0, "useless"), (0.019, "useless"), (0.02, "weak"),
                                          (0.099, "weak"), (0.1, "medium"), (0.29, "medium"),
                                          (0.3, "strong"), (0.5, "strong"),
                                          (0.5001, "suspicious"), (None, None)])
def test_iv_bands(iv: float | None, band: str | None) -> None:
    assert iv_band(iv) == band


def test_information_value() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    bad = (x + rng.normal(size=4000) > 1.5).astype(np.int64)
    strong = information_value(pd.Series(x), bad, numeric=True)
    noise = information_value(pd.Series(rng.normal(size=4000)), bad, numeric=True)
    assert strong is not None and noise is not None and strong > 0.3 > 0.02 > noise
    cats = pd.Series(np.where(bad == 1, "a", "b"))  # the category is the outcome
    assert iv_band(information_value(cats, bad, numeric=False)) == "suspicious"
    with_missing = pd.Series(np.where(bad == 1, np.nan, x))  # missing means bad
    assert iv_band(information_value(with_missing, bad, numeric=True)) == "suspicious"
    assert information_value(pd.Series(x), np.zeros(4000, dtype=np.int64), numeric=True) is None
    assert bad_of(np.array([0, 1, 1, 2, 3]), 4).tolist() == [0, 1, 1, 1, 1]


def test_require_monotone_picks_a_model_without_violations(fresh_home: Path) -> None:
    from loanrisk.learn.pipeline import LearnOptions, learn

    res = learn(LearnOptions(dataset="lending-club-default", sample=1500, register=False,
                             models=("majority", "linear", "scorecard"), progress=False,
                             require_monotone=True))
    mono = res.extras["monotone"]
    assert mono[res.best]["violation_rate"] == 0.0 and res.best == "scorecard"
    rule = res.summary["monotone_rule"]
    assert rule["chosen"] == res.best
    assert set(rule["excluded"]) == {m for m in ("linear",) if mono[m]["violation_rate"] > 0}
    report = (res.report_dir / "report.md").read_text()
    assert "Monotone champion" in report and "Scorecard points" in report
    assert "Information value" in report
    card = json.loads((res.report_dir / "scorecard.json").read_text())
    assert card["pdo"] == 20 and card["base_points"] == 600 and card["bins"]
    assert res.trained[-1].parity <= 1e-5
    iv = res.summary["information_value"]
    assert iv and all(v["band"] for v in iv.values())
