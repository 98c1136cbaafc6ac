"""A scorecard's reasons: points below maximum, read off the graph's "points" output in the run
that gives the probabilities (exact, no extra rows), worded as every other model's reasons."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scorecard_factory import build_scorecard_dir  # noqa: E402
from test_scorecard import _fit  # noqa: E402

from loanrisk.config import Settings  # noqa: E402
from loanrisk.errors import ModelLoadError  # noqa: E402
from loanrisk.scoring.reasons import REASONS_BY_POINTS, REASONS_BY_SUBSTITUTION  # noqa: E402
from loanrisk.scoring.scorer import Scorer  # noqa: E402

LOW = {"income": 15000.0, "dti": 38.0, "purpose": "debt"}
HIGH = {"income": 90000.0, "dti": 8.0, "purpose": "car"}
MISSING = {"income": 150000.0, "dti": None, "purpose": "other"}


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_scorecard_dir(tmp_path_factory.mktemp("sc") / "m")


def _points(s: Scorer, records: list[dict[str, Any]]) -> np.ndarray:
    _, points = s._run(s._feed_from(*s._matrices(records)), points=True)
    return np.asarray(points)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_graph_points_equal_the_model_and_add_up_to_the_score(n_classes: int) -> None:
    import onnxruntime as ort

    from loanrisk.models.scorecard_export import points_matrix

    model, X = _fit(n_classes)
    graph = model.to_onnx(X.shape[1])
    assert [o.name for o in graph.graph.output] == ["probabilities", "points"]
    sess = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    proba, points = sess.run(["probabilities", "points"], {"features": X})
    assert np.max(np.abs(proba - model.predict_proba(X))) <= 1e-5
    assert np.max(np.abs(points - points_matrix(model, X))) <= 1e-9
    table = model.points_table()
    p = model.predict_proba(X)
    p_bad = p[:, model.cut_:].sum(axis=1)
    score = table["offset"] + table["factor"] * np.log((1 - p_bad) / p_bad)
    assert np.max(np.abs(points.sum(axis=1) - score)) <= 1e-6
    meta = {m.key: m.value for m in graph.metadata_props}
    assert json.loads(meta["points_attributes"]) == ["income", "dti", "home"]
    maximum = np.array(json.loads(meta["points_max"]))
    assert (points <= maximum + 1e-9).all()
    assert np.isclose(points, maximum).any(axis=0).all()  # each maximum is reached by someone


def test_the_one_graph_keeps_points_and_their_metadata(card: Path) -> None:
    graph = onnx.load(str(card / "model.onnx"))
    assert [o.name for o in graph.graph.output] == ["probabilities", "points"]
    meta = {m.key: m.value for m in graph.metadata_props}
    assert {"points_attributes", "points_max", "points_best", "points_scaling",
            "classes", "model"} <= set(meta)
    assert json.loads(meta["points_scaling"]) == {"pdo": 20.0, "base_points": 600.0,
                                                  "base_odds": 50.0}


def test_reasons_are_points_below_maximum_from_one_run(card: Path) -> None:
    s = Scorer.load(card, settings=Settings(max_reasons=3))
    assert s.reasons_by == REASONS_BY_POINTS and s.points is not None
    rows: list[int] = []
    run = s._run

    def counting(feed: dict[str, np.ndarray], **kw: Any) -> Any:
        rows.append(len(next(iter(feed.values()))))
        return run(feed, **kw)

    s._run = counting  # type: ignore[method-assign]
    records = [LOW, HIGH, MISSING]
    decisions = s.score(records)
    assert rows == [3]  # the records alone: no substitution variants
    s._run = run  # type: ignore[method-assign]
    points = _points(s, records)
    short = s.points.maximum - points
    for i, d in enumerate(decisions):
        want = [s.points.columns[j] for j in np.argsort(-short[i], kind="stable")
                if short[i, j] > 1e-5][:3]
        assert s.reason_features([records[i]]) == [[s.features[k] for k in want]]
        assert len(d.reasons) == len(want)
    assert decisions[0].decision == "decline"
    assert decisions[0].reasons == ["Income is low", "Debt-to-income ratio is high",
                                    "Purpose of the loan: debt"]
    # a side is named against the best bins: 90,000 is below the best income bin
    assert decisions[1].reasons[0] == "Income is low"
    assert "Debt-to-income ratio (not provided)" in decisions[2].reasons
    # batched and single calls agree
    assert [s.score([r])[0].reasons for r in records] == [d.reasons for d in decisions]


def test_shortfall_is_what_the_best_bin_would_give(card: Path) -> None:
    """Exact: moving one attribute into its best bin raises that attribute's points by its
    shortfall, and changes no other attribute's points."""
    s = Scorer.load(card)
    assert s.points is not None
    k = s.features.index("income")
    low, high = s.points.best[k]
    best_income = low + 1.0 if np.isfinite(low) else high - 1.0
    before, after = _points(s, [LOW]), _points(s, [{**LOW, "income": best_income}])
    col = list(s.points.columns).index(k)
    assert after[0, col] == pytest.approx(s.points.maximum[col], abs=1e-9)
    others = [j for j in range(len(s.points.columns)) if j != col]
    np.testing.assert_array_equal(after[0, others], before[0, others])
    assert "Income is low" not in s.score([{**LOW, "income": best_income}])[0].reasons


def test_substitution_stays_available_and_other_models_are_unchanged(card: Path) -> None:
    from model_factory import build_model_dir

    s = Scorer.load(card)
    by_sub = s.reason_features([LOW], by_points=False)[0]
    assert by_sub and set(by_sub) <= {"income", "dti", "purpose"}
    plain = Scorer.load(build_model_dir(card.parent / "plain"))
    assert plain.points is None and plain.reasons_by == REASONS_BY_SUBSTITUTION
    assert plain.reason_features([LOW]) == plain.reason_features([LOW], by_points=False)


def test_grades_get_points_reasons(tmp_path: Path) -> None:
    s = Scorer.load(build_scorecard_dir(tmp_path / "g", n_classes=3))
    worst = s.score([LOW])[0]
    assert worst.decision == "C" and worst.reasons[0] == "Income is low"
    assert s.reasons_by == REASONS_BY_POINTS


def test_points_without_their_metadata_are_refused(card: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(card, bad)
    graph = onnx.load(str(bad / "model.onnx"))
    keep = [(m.key, m.value) for m in graph.metadata_props if m.key != "points_max"]
    del graph.metadata_props[:]
    for key, value in keep:
        graph.metadata_props.add(key=key, value=value)
    (bad / "model.onnx").write_bytes(graph.SerializeToString())
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest.pop("sha256")
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="points"):
        Scorer.load(bad)
