"""Learning from the store: a better challenger is promoted, a worse one refused; safe repeats."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from watch_helpers import add_outcomes, fill_store, records  # noqa: E402

from loanrisk.config import get_settings  # noqa: E402
from loanrisk.datasets import load_bundled  # noqa: E402
from loanrisk.errors import LoanriskError  # noqa: E402
from loanrisk.learn.pipeline import LearnOptions, learn  # noqa: E402
from loanrisk.registry import Registry  # noqa: E402
from loanrisk.scoring.scorer import Scorer  # noqa: E402
from loanrisk.store import Store  # noqa: E402
from loanrisk.watch.retrain import RetrainOptions, learn_from_store, schedule  # noqa: E402

# LightGBM with 2 threads on 2 shared cores spins for ~10x longer; tests use one
ONE_THREAD = {"n_jobs": 1}
NAME = "default-retrain"


def _store_rows(df: pd.DataFrame, outcomes: list[str], scorer: Scorer) -> None:
    recs = records(df, scorer.features)
    store = Store(get_settings().resolved_database_url)
    ids = fill_store(store, recs, scorer.score(recs), model=NAME,
                     version=int(scorer.version or 0), sha256=scorer.sha256)
    add_outcomes(store, ids, outcomes)
    store.close()


def _new_world(df: pd.DataFrame, seed: int = 0) -> list[str]:
    """Defaults now follow revolving utilisation and income (not what the champion learnt)."""
    rng = np.random.default_rng(seed)
    util = df["revol_util"].fillna(df["revol_util"].median()).to_numpy()
    inc = np.log(df["annual_inc"].clip(lower=1000).to_numpy())
    z = 0.06 * (util - 50) - 1.2 * (inc - 11) - 1.4
    bad = rng.uniform(size=len(df)) < 1 / (1 + np.exp(-z))
    return ["defaulted" if b else "repaid" for b in bad]


@pytest.mark.slow
def test_store_learning_promotes_better_refuses_worse(fresh_home: Path) -> None:
    first = learn(LearnOptions(dataset="lending-club-default", name=NAME, sample=1500,
                               models=("majority", "gbdt"), progress=False,
                                 gbdt=ONE_THREAD))
    assert first.version is not None
    v1 = first.version.version
    reg = Registry()
    scorer = Scorer.load(reg.download(NAME, v1), version=v1)
    df, _ = load_bundled("lending-club-default")
    with pytest.raises(LoanriskError, match="has no applications yet"):
        learn_from_store(RetrainOptions(model=NAME))

    # same world, a weak challenger (majority only), with the original table added: refused
    same = df.sample(600, random_state=1).reset_index(drop=True)
    _store_rows(same, same["Class"].tolist(), scorer)
    worse = learn_from_store(RetrainOptions(model=NAME, models=("majority",),
                                            with_dataset="lending-club-default"))
    assert worse.rows_from_store == 600 and worse.rows_from_dataset == len(df)
    assert not worse.promoted and "does not beat" in worse.reason
    assert reg.champion(NAME).version == v1

    # the world moved: outcomes follow a new rule; a challenger learnt from them wins the gate
    moved = df.sample(2400, random_state=2).reset_index(drop=True)
    _store_rows(moved, _new_world(moved), scorer)
    better = learn_from_store(RetrainOptions(model=NAME, models=("majority", "gbdt"),
                                             gbdt=ONE_THREAD, since="1d", run_key="weekly-1"))
    assert better.promoted, better.reason
    assert "beats champion" in better.reason
    assert reg.champion(NAME).version == better.version

    # the same run key again: nothing is trained twice
    again = learn_from_store(RetrainOptions(model=NAME, run_key="weekly-1"))
    assert again.skipped and again.version == better.version
    assert len(reg.list_versions(NAME)) == 3

    # the command line: its default seed, --no-promote kept, options it would ignore refused
    from typer.testing import CliRunner

    from loanrisk.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["learn", "--from-store", "--name", NAME, "--models", "majority",
                              "--no-promote", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "not promoted" in res.output and reg.champion(NAME).version == better.version
    assert len(reg.list_versions(NAME)) == 4
    res = runner.invoke(app, ["learn", "--from-store", "--name", NAME,
                              "--dataset", "lending-club-default"])
    assert res.exit_code != 0 and "--dataset cannot go with --from-store" in res.output

    # the scheduler keys runs by period and logs a failing run without stopping
    seen: list[object] = []
    n = schedule(RetrainOptions(model=NAME, since="2999-01-01"), every="7d", max_runs=2,
                 sleep=lambda s: None, on_result=seen.append)
    assert n == 2 and len(seen) == 2
    assert all(isinstance(r, LoanriskError) and "only 0 stored" in str(r) for r in seen)
