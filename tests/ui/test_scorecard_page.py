"""The Models page's scorecard section (AppTest): the points table, one application's points
beside their maxima, and the reasons the service gives (points below maximum)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import home  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "src" / "loanrisk" / "ui" / "app.py")


@pytest.fixture(scope="module")
def scorecard_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home holding lending-club-default v1: a scorecard (majority beside it), 1,500 rows."""
    from loanrisk.learn.pipeline import LearnOptions, learn

    with home(tmp_path_factory.mktemp("ui-scorecard")) as path:
        learn(LearnOptions(dataset="lending-club-default", sample=1500,
                           models=("majority", "scorecard"), progress=False,
                           scorecard={"pdo": 40.0}))
        yield path


def test_models_page_shows_points_and_reasons(scorecard_home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from loanrisk.config import get_settings
    from loanrisk.registry import Registry

    monkeypatch.setenv("LOANRISK_HOME", str(scorecard_home))
    get_settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    subheaders = [s.value for s in at.subheader]
    assert "Scorecard points and reasons" in subheaders
    captions = "\n".join(str(c.value) for c in at.caption)
    assert "600 points at 50:1 odds (good:bad), 40 points to double the odds" in captions
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    table = tables[("attribute", "bin", "WoE", "points", "training rows")]
    assert {"int_rate", "annual_inc"} <= set(table["attribute"])
    one = tables[("attribute", "value", "points", "maximum", "below maximum")]
    assert (one["below maximum"] >= -1e-9).all()
    assert list(one["below maximum"]) == sorted(one["below maximum"], reverse=True)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Decision"] in {"approve", "decline"}
    # the reasons listed are the service's: the scorer's own, for this row
    scorer = Registry(get_settings()).load_scorer("lending-club-default", 1)
    manifest = scorer.manifest
    record = manifest["golden"]["inputs"][0]
    assert manifest["scorecard"]["pdo"] == 40.0 and manifest["scorecard"]["bins"]
    want = scorer.score([record])[0].reasons
    shown = [m.value for m in at.markdown if str(m.value).startswith("- ")]
    assert shown and shown[-1] == "\n".join(f"- {r}" for r in want)
    # the first reason is the attribute furthest below its maximum
    first = scorer.reason_features([record])[0][0]
    below = dict(zip(one["attribute"], one["below maximum"], strict=True))
    assert below[first] == pytest.approx(one["below maximum"].max(), abs=1e-6)
    # another row: the table follows it
    at.selectbox(key="scorecard_row:lending-club-default:1").set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    get_settings.cache_clear()
