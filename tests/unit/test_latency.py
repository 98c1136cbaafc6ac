"""The latency budget: which models fit, and that the champion is picked only among them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from loanrisk.errors import LoanriskError
from loanrisk.learn.repeats import RepeatStats, explain, pick_best_mean
from loanrisk.learn.stages import pick_best
from loanrisk.scoring.latency import Latency, within_budget

TIMES = {"majority": Latency(50, 60, 1), "linear": Latency(120, 150, 3),
         "gbdt": Latency(900, 1500, 400), "mlp": Latency(400, 700, 90)}


def test_within_budget() -> None:
    assert within_budget(TIMES, None) is None
    assert within_budget(TIMES, 500) == {"linear", "mlp"}
    assert within_budget(TIMES, 1e6) == {"linear", "mlp", "gbdt"}  # never the majority baseline
    with pytest.raises(LoanriskError, match="the fastest is linear at 120 µs"):
        within_budget(TIMES, 100)
    with pytest.raises(LoanriskError, match="must be positive"):
        within_budget(TIMES, 0)
    with pytest.raises(LoanriskError, match="none could be timed"):
        within_budget({}, 500)
    assert Latency(123.456, 200, 3.25).as_dict() == {"score_p50_us": 123.5,
                                                      "score_p99_us": 200.0, "graph_kib": 3.2}


def _trained(name: str, auc: float) -> SimpleNamespace:
    return SimpleNamespace(name=name, evaluation=SimpleNamespace(metrics={"roc_auc": auc}))


def test_champion_only_among_models_within_budget() -> None:
    trained = [_trained("majority", 0.5), _trained("linear", 0.68), _trained("mlp", 0.74),
               _trained("gbdt", 0.75)]
    assert pick_best(trained, metric="roc_auc").name == "gbdt"
    assert pick_best(trained, metric="roc_auc", among={"linear", "mlp"}).name == "mlp"
    stats = RepeatStats(seeds=[1, 2], per_seed={
        "linear": [{"roc_auc": 0.68}, {"roc_auc": 0.69}], "mlp": [{"roc_auc": 0.74},
                                                                  {"roc_auc": 0.73}],
        "gbdt": [{"roc_auc": 0.75}, {"roc_auc": 0.76}]})
    stats.mean = {m: {"roc_auc": sum(r["roc_auc"] for r in v) / 2}
                  for m, v in stats.per_seed.items()}
    stats.std = {m: {"roc_auc": 0.005} for m in stats.per_seed}
    stats.best = pick_best_mean(stats, metric="roc_auc", among={"linear", "mlp"})
    assert stats.best == "mlp"
    why = explain(stats, metric="roc_auc", among={"linear", "mlp"})
    assert "within the latency budget; gbdt left out" in why and "runner-up linear" in why
