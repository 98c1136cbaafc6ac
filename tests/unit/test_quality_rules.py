"""Repeated-evaluation statistics, the decision rule, monotone violations and tuning."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loanrisk.config import Settings
from loanrisk.errors import LoanriskError
from loanrisk.learn.repeats import RepeatStats, aggregate, explain, pick_best_mean, seeds_for
from loanrisk.scoring.decision import decision_rule, risk_score


def stats() -> RepeatStats:
    per = {"majority": [{"roc_auc": 0.5}] * 3,
           "gbdt": [{"roc_auc": v} for v in (0.75, 0.76, 0.74)],
           "mlp": [{"roc_auc": v} for v in (0.77, 0.78, 0.76)]}
    st = RepeatStats(seeds=seeds_for(42, 3), per_seed=per)
    st.mean, st.std = aggregate(per)
    st.best = pick_best_mean(st, metric="roc_auc")
    st.why = explain(st, metric="roc_auc")
    return st


def test_mean_std_and_the_champion_on_the_mean() -> None:
    st = stats()
    assert st.seeds == [42, 43, 44]
    assert st.mean["mlp"]["roc_auc"] == pytest.approx(0.77)
    assert st.std["mlp"]["roc_auc"] == pytest.approx(0.01)  # ddof 1
    assert st.best == "mlp" and st.merged("mlp")["roc_auc_std"] == pytest.approx(0.01)
    assert "runner-up gbdt" in st.why and "won on 3 of 3 splits" in st.why
    assert "a clear win" in st.why and "+0.0200" in st.why
    with pytest.raises(LoanriskError, match="--repeats"):
        seeds_for(1, 0)


def test_decision_rule_max_bad_rate_and_approval_rate() -> None:
    p1 = np.linspace(0.0, 0.2, 101)
    proba = np.column_stack([1 - p1, p1])
    d = decision_rule(proba, task="binary", settings=Settings(max_bad_rate=0.05),
                      y=(p1 > 0.15).astype(int))
    approved = p1[p1 < d["decline_threshold"]]
    assert approved.mean() <= 0.05 + 1e-9 and d["rule"] == "max_bad_rate"
    assert d["tiers"]["high"] == d["decline_threshold"] > d["tiers"]["medium"]
    assert "observed_bad_rate_approved" in d
    d = decision_rule(proba, task="binary",
                      settings=Settings(decision_rule="approval_rate", target_approval_rate=0.5))
    assert d["approval_rate"] == pytest.approx(0.5, abs=0.02)
    with pytest.raises(LoanriskError, match="LOANRISK_DECISION_RULE"):
        decision_rule(proba, task="binary", settings=Settings(decision_rule="vibes"))
    grades = np.full((2, 7), 1 / 7)
    assert risk_score(grades, task="multiclass") == pytest.approx([3 / 7, 3 / 7])  # E, F, G


def _graph(sign: float) -> tuple[bytes, pd.DataFrame, list]:
    """A linear model's one graph on x (monotone +1) and z (free)."""
    from loanrisk.features import Preprocessor
    from loanrisk.learn.export import build_graph
    from loanrisk.models.linear import LinearModel
    from loanrisk.schema import Attribute

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.integers(0, 10, 400).astype(float), "z": rng.normal(size=400)})
    attrs = [Attribute("x", "numeric", monotone=1), Attribute("z", "numeric")]
    pre = Preprocessor(attrs).fit(df)
    y = ((sign * df["x"] + rng.normal(0, 2, 400)) > sign * 4.5).astype(int).to_numpy()
    model = LinearModel(seed=0).fit(pre.transform(df), y, n_classes=2)
    return build_graph(pre, model, classes=["good", "bad"]).SerializeToString(), df, attrs


def test_monotone_violations_per_attribute() -> None:
    from loanrisk.learn.monotone import violations

    for sign, expect in ((1.0, 0.0), (-1.0, 0.5)):
        graph, df, attrs = _graph(sign)
        v = violations(graph, train=df, ev=df, attrs=attrs, task="binary")
        assert set(v["attributes"]) == {"x"} and v["attributes"]["x"]["step"] == 1.0
        rate = v["attributes"]["x"]["violation_rate"]
        assert rate == 0.0 if expect == 0 else rate > expect  # risk falls as x rises: wrong


def test_tune_is_stored_resumable_and_used_by_learn(fresh_home: Path) -> None:
    import optuna

    from loanrisk.config import get_settings
    from loanrisk.learn.pipeline import LearnOptions
    from loanrisk.learn.tune import TuneOptions, tune
    from loanrisk.learn.tuned import apply_tuned

    opts = TuneOptions(model="linear", dataset="lending-club-default", trials=2, sample=1500,
                       progress=False)
    first = tune(opts)
    second = tune(opts)  # same study name: resumed, not restarted
    assert first.study_name == second.study_name == "lending-club-default-linear-n1500"
    assert second.n_trials == 4 and first.storage.endswith("optuna.db")
    assert len(optuna.load_study(study_name=first.study_name, storage=first.storage).trials) == 4
    doc = json.loads(second.params_path.read_text())
    assert doc["split"] == "validation" and second.plot_path.exists()
    learn_opts = apply_tuned(LearnOptions(dataset="lending-club-default", linear={"alpha": 0.5}),
                             get_settings(), key="lending-club-default")
    assert learn_opts.linear["alpha"] == 0.5  # the user's own value wins
    assert learn_opts.linear["penalty"] == doc["params"]["penalty"]
    assert "linear" in learn_opts.tuned_from
    with pytest.raises(LoanriskError, match="--model"):
        tune(TuneOptions(model="forest", dataset="lending-club-default"))
    with pytest.raises(LoanriskError, match="--timeout must be .* above 0, not -5"):
        tune(TuneOptions(model="linear", dataset="lending-club-default", timeout=-5))


def test_tune_gbdt_reports_rounds_and_can_prune(fresh_home: Path) -> None:
    from loanrisk.learn.tune import TuneOptions, tune

    res = tune(TuneOptions(model="gbdt", dataset="lending-club-default", trials=2, sample=1200,
                           progress=False))
    assert res.n_trials == 2 and 0.5 < res.best_value <= 1.0
    assert "num_leaves" in res.best_params


def test_tune_on_ray_shares_one_study(fresh_home: Path) -> None:
    pytest.importorskip("ray", reason="the ray backend needs the scale extra")
    import optuna

    from loanrisk.learn.tune import TuneOptions, tune

    opts = TuneOptions(model="linear", dataset="lending-club-default", trials=5, sample=1200,
                       progress=False, backend="ray", workers=2)
    res = tune(opts)
    # 5 trials (the first is the enqueued default) run by two Ray tasks in one stored study
    study = optuna.load_study(study_name=res.study_name, storage=res.storage)
    assert res.n_trials == len(study.trials) == 5
    # every trial ran once and finished; the queued defaults were taken by one process only
    assert all(t.state.is_finished() for t in study.trials)
    assert sum(t.params == study.trials[0].params for t in study.trials) == 1
    assert json.loads(res.params_path.read_text())["backend"] == "ray"
    with pytest.raises(LoanriskError, match="backend"):
        tune(TuneOptions(model="linear", dataset="lending-club-default", backend="spark"))


@pytest.mark.parametrize(("model", "design"), [("mlp", "tabular"), ("mlp", "reference"),
                                               ("gbdt", "tabular"), ("linear", "tabular")])
def test_the_default_trial_is_a_point_of_the_search_space(model: str, design: str) -> None:
    """The first trial of every study is the shipped default: each of its values is searched."""
    from optuna.trial import FixedTrial

    from loanrisk.learn.tune import DEFAULTS, suggest

    defaults = dict(DEFAULTS[model])
    if design == "reference":
        defaults.pop("n_bins")
    params = suggest(FixedTrial(defaults), model, design=design)  # raises on a value not given
    if model == "mlp" and design == "tabular":
        # the bin method is fixed (tree bins beat quantile bins over 5 splits), not searched
        assert params["bins"] == "tree" and params["n_bins"] == 8
        assert params["hidden"] == [128, 64, 32, 16]


def test_repeated_splits_on_ray_equal_the_local_ones(fresh_home: Path) -> None:
    """`evaluate --backend ray`: the splits after the first run as Ray tasks, same figures."""
    pytest.importorskip("ray", reason="the ray backend needs the scale extra")
    from loanrisk.learn.pipeline import LearnOptions, learn

    base = LearnOptions(dataset="lending-club-default", sample=1500, repeats=3,
                        models=("majority", "linear", "mlp", "gbdt"), mlp={"max_epochs": 3},
                        register=False, promote=False, progress=False, use_tuned=False)
    local = learn(base).repeats
    on_ray = learn(dataclasses.replace(base, backend="ray")).repeats
    assert on_ray.seeds == local.seeds == [42, 43, 44]
    # seeded refits, the networks with this process's torch threads: identical, in seed order
    assert on_ray.per_seed == local.per_seed
    assert on_ray.best == local.best and on_ray.why == local.why
    with pytest.raises(LoanriskError, match="--backend ray spreads the repeated splits"):
        learn(dataclasses.replace(base, backend="ray", repeats=1))
    with pytest.raises(LoanriskError, match="--backend must be local or ray"):
        learn(dataclasses.replace(base, backend="spark"))
