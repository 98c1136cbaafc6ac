"""A scorecard through `learn`: the points scaling from options and the configuration (recorded
in the manifest, the graph and the points table), the report's check of how often its points
reasons agree with substitution reasons, and the agreement measure itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scorecard_factory import build_scorecard_dir  # noqa: E402

from loanrisk.learn.reasons_check import agreement, reasons_agreement  # noqa: E402


def test_agreement_measures() -> None:
    points = [["a", "b", "c"], ["a", "b"], ["c"], ["a"]]
    subst = [["a", "c", "d"], ["b", "a", "x"], [], ["b"]]
    out = agreement(points, subst, adverse=[True, False, False, True])
    assert out["rows"] == 4 and out["compared"] == 3 and out["no_substitution_reason"] == 1
    assert out["top1"] == pytest.approx(1 / 3, abs=1e-4)
    # row 1: {a, c} of 3; row 2: {a, b} of min(3, 2); row 4: none of 1
    assert out["top3_overlap"] == pytest.approx((2 / 3 + 1 + 0) / 3, abs=1e-4)
    assert out["adverse"]["compared"] == 2 and out["adverse"]["top1"] == 0.5
    assert "top1" not in agreement([[]], [["a"]])


@pytest.mark.parametrize("method", ["penalised", "woe"])
def test_reasons_agreement_on_a_scorecard_graph(tmp_path: Path, method: str) -> None:
    from scorecard_factory import table

    from loanrisk import manifest as mf
    from loanrisk.config import Settings
    from loanrisk.scoring.latency import ServingContext

    path = build_scorecard_dir(tmp_path / "m", method=method)
    man = json.loads((path / "manifest.json").read_text())
    ctx = ServingContext(features=man["features"], inputs=man["inputs"], classes=man["classes"],
                         task=man["task"], reference=man["reference"],
                         schema=json.loads((path / "schema.json").read_text()))
    records = mf.records(table(n=300, seed=1), man["features"])
    graph = (path / "model.onnx").read_bytes()
    out = reasons_agreement(graph, ctx, records, settings=Settings(max_reasons=3))
    assert out is not None and out["rows"] == 300 and out["max_reasons"] == 3
    assert out["compared"] + out["no_substitution_reason"] >= 300 - out["no_points_reason"]
    # three attributes, each pushing risk one way: the two rules agree well above chance (1/3);
    # the classic fit's coarse bins mostly agree, the penalised fit's narrower best bins less
    # often (its shortfall to the best bin is not substitution's change against the typical
    # applicant: bench/RESULTS.md, "Scorecard")
    assert out["top1"] > (0.5 if method == "woe" else 0.4) and out["top3_overlap"] > 0.5
    # not a scorecard: nothing to compare
    from model_factory import build_model_dir

    plain = (build_model_dir(tmp_path / "plain") / "model.onnx").read_bytes()
    assert reasons_agreement(plain, ctx, records, settings=Settings()) is None


def test_learn_records_the_scaling_and_the_agreement(fresh_home: Path) -> None:
    from loanrisk.config import Settings
    from loanrisk.learn.pipeline import LearnOptions, learn

    res = learn(LearnOptions(dataset="lending-club-default", sample=1500, register=False,
                             models=("majority", "scorecard"), progress=False,
                             scorecard={"base_odds": 10.0}),
                Settings(scorecard_pdo=30.0, scorecard_method="woe"))
    assert res.best == "scorecard"
    manifest = json.loads((res.report_dir / "model" / "manifest.json").read_text())
    card = manifest["scorecard"]
    assert (card["pdo"], card["base_points"], card["base_odds"]) == (30.0, 600.0, 10.0)
    # the classic fit, from LOANRISK_SCORECARD_METHOD: one coefficient per attribute
    assert card["method"] == "woe" and card["coefficients"]
    assert manifest["training"]["overrides"]["scorecard"]["method"] == "woe"
    assert card["reasons"] == "points below maximum" and card["bins"]
    assert manifest["training"]["overrides"]["scorecard"]["pdo"] == 30.0
    graph = onnx.load(str(res.report_dir / "model" / "model.onnx"))
    meta = {m.key: m.value for m in graph.metadata_props}
    assert json.loads(meta["points_scaling"]) == {"pdo": 30.0, "base_points": 600.0,
                                                  "base_odds": 10.0}
    agree = res.summary["scorecard"]["reasons_agreement"]
    assert agree["rows"] > 0 and 0 <= agree["top1"] <= 1 and 0 <= agree["top3_overlap"] <= 1
    assert "adverse" in agree
    report = (res.report_dir / "report.md").read_text()
    assert "points below maximum vs substitution" in report and "top-1 agreement" in report
    assert res.summary["models"]["scorecard"]["score_p50_us"] > 0


@pytest.mark.parametrize(("flag", "value"), [("--pdo", "0"), ("--base-odds", "-2"),
                                             ("--base-points", "nan"),
                                             ("--scorecard-method", "spline")])
def test_bad_scaling_is_refused(flag: str, value: str, fresh_home: Path) -> None:
    from typer.testing import CliRunner

    from loanrisk.cli import app

    res = CliRunner().invoke(app, ["learn", "--dataset", "lending-club-default",
                                   "--models", "scorecard", flag, value])
    assert res.exit_code == 2
    assert flag in res.output


def test_scaling_setting_is_validated() -> None:
    from pydantic import ValidationError

    from loanrisk.config import Settings

    with pytest.raises(ValidationError):
        Settings(scorecard_pdo=0)
    with pytest.raises(ValidationError):
        Settings(scorecard_method="spline")


def test_replay_of_scorecard_decisions_is_identical(fresh_home: Path) -> None:
    """Stored scorecard decisions (points reasons, decided one at a time) re-score identically
    with the registered version (replay loads it as the service does)."""
    from watch_helpers import fill_store, records

    from loanrisk.config import get_settings
    from loanrisk.datasets import load_bundled
    from loanrisk.learn.pipeline import LearnOptions, learn
    from loanrisk.registry import Registry
    from loanrisk.scoring.scorer import Scorer
    from loanrisk.store import Store
    from loanrisk.watch.replay import replay

    res = learn(LearnOptions(dataset="lending-club-default", name="card-replay", sample=1500,
                             models=("majority", "scorecard"), progress=False))
    assert res.version is not None and res.best == "scorecard"
    v = res.version.version
    scorer = Scorer.load(Registry().download("card-replay", v), version=v)
    assert scorer.reasons_by == "points below maximum"
    df, _ = load_bundled("lending-club-default")
    recs = records(df.sample(300, random_state=5), scorer.features)
    decisions = [scorer.score([r])[0] for r in recs]
    assert all(d.reasons for d in decisions)
    store = Store(get_settings().resolved_database_url)
    fill_store(store, recs, decisions, model="card-replay", version=v, sha256=scorer.sha256)
    store.close()
    report = replay(model="card-replay", since="7d")
    assert report.checked == 300 and report.identical == 300, report.mismatches[:3]
