"""The scorecard's penalised fit (models/scorecard_fit.py): fine quantile bins, the smoothness
penalty, monotone slopes, and a clear error for an unknown method."""

from __future__ import annotations

import numpy as np
import pytest

from loanrisk.models import make_model
from loanrisk.models.scorecard_fit import centres, fine_edges


@pytest.mark.parametrize("n", [50, 1000, 20000])
def test_fine_edges_keep_every_bin_above_its_share(n: int) -> None:
    x = np.random.default_rng(n).lognormal(size=n).astype(np.float32)
    x[: n // 3] = 1.0  # a heavy tie: one value for a third of the rows
    edges = fine_edges(x, 20, 0.02)
    assert len(edges) + 1 <= 20 and np.all(np.diff(edges) > 0)
    counts = np.bincount((x[:, None] > edges[None, :]).sum(axis=1), minlength=len(edges) + 1)
    assert counts.min() >= 0.02 * n
    assert np.all(np.diff(centres(x, edges)) >= 0)


def test_fine_edges_of_a_constant_or_empty_column() -> None:
    assert fine_edges(np.ones(100, dtype=np.float32), 20, 0.02).size == 0
    assert fine_edges(np.zeros(0, dtype=np.float32), 20, 0.02).size == 0


def test_straight_line_risk_gives_near_linear_points() -> None:
    """Risk linear in x: the smoothness penalty keeps the bins' values close to a line in the
    bins' centres, and the graph's probabilities rank like the true risk."""
    rng = np.random.default_rng(1)
    n = 6000
    x = rng.normal(size=n).astype(np.float32)
    y = (rng.logistic(size=n) < 1.2 * x).astype(np.int64)  # more x, more risk (class 1 = bad)
    cols = [{"name": "x", "source": "x"}]
    model = make_model("scorecard", seed=0, task="binary", columns=cols, monotone=[1]).fit(
        x[:, None], y, n_classes=2)
    a = model.attrs_[0]
    assert len(a.edges) >= 10
    assert np.all(np.diff(a.woe) <= 1e-12)  # monotone +1: the value (ln odds good) never rises
    c = centres(x, a.edges)
    slope, icept = np.polyfit(c, a.woe, 1)
    assert slope == pytest.approx(-1.2, rel=0.25)
    assert np.abs(a.woe - (slope * c + icept)).max() < 0.35
    assert model.points_table()["method"] == "penalised"
    assert model.params()["method"] == "penalised"


def test_category_penalty_shrinks_the_levels_and_no_more() -> None:
    """A categorical attribute's levels carry ``category_penalty`` times the L2 of a missing
    bin: a larger one pulls the levels' values towards 0, a numeric attribute's bins keep
    their shape, and the setting is recorded with the model's parameters."""
    rng = np.random.default_rng(7)
    n = 4000
    x = rng.normal(size=n).astype(np.float32)
    level = rng.integers(0, 8, size=n)
    effect = np.linspace(-1.0, 1.0, 8)[level]
    y = (rng.logistic(size=n) < 0.8 * x + effect - 2.0).astype(np.int64)
    X = np.column_stack([x, np.eye(8, dtype=np.float32)[level]])
    cols = [{"name": "x", "source": "x"}] + [{"name": f"c_{j}", "source": "c"} for j in range(8)]
    spread = {}
    for pen in (1.0, 30.0):
        model = make_model("scorecard", seed=0, task="binary", columns=cols,
                           monotone=[0] * 9, C=0.05, category_penalty=pen).fit(X, y,
                                                                               n_classes=2)
        cat = next(a for a in model.attrs_ if a.value_col is None)
        spread[pen] = float(np.ptp(cat.woe))
        assert model.params()["category_penalty"] == pen
    assert spread[30.0] < 0.5 * spread[1.0]
    assert spread[1.0] > 1.0  # the levels' true range is 2 (ln odds)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="'penalised' or 'woe'"):
        make_model("scorecard", seed=0, task="binary", method="spline")


def test_tune_searches_the_scorecard_and_learn_uses_it(fresh_home: object) -> None:
    """`tune --model scorecard`: the first trial is the shipped shape, the best parameters are
    saved, and `learn` merges them under the user's own scorecard options (pdo etc.)."""
    import json

    from loanrisk.config import get_settings
    from loanrisk.learn.tune import DEFAULTS, TuneOptions, tune
    from loanrisk.learn.tuned import apply_tuned
    from loanrisk.learn.types import LearnOptions

    res = tune(TuneOptions(model="scorecard", dataset="lending-club-default", sample=1500,
                           trials=3, progress=False))
    assert res.n_trials == 3
    saved = json.loads(res.params_path.read_text())["params"]
    assert set(saved) == set(DEFAULTS["scorecard"])
    opts = LearnOptions(dataset="lending-club-default", models=["majority", "scorecard"],
                        scorecard={"pdo": 40.0})
    tuned = apply_tuned(opts, get_settings(), key="lending-club-default")
    assert tuned.scorecard == {**saved, "pdo": 40.0}
    assert "scorecard" in tuned.tuned_from
