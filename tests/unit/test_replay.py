"""Decision replay: 1,000 stored decisions re-score identically with the version that made them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update
from watch_helpers import fill_store, records

from loanrisk.config import get_settings
from loanrisk.datasets import load_bundled
from loanrisk.learn.pipeline import LearnOptions, learn
from loanrisk.registry import Registry
from loanrisk.scoring.scorer import Scorer
from loanrisk.store import Store
from loanrisk.store.tables import Application
from loanrisk.watch.replay import replay

# LightGBM with 2 threads on 2 shared cores spins for ~10x longer; tests use one
ONE_THREAD = {"n_jobs": 1}
NAME = "default-replay"


def test_replay_is_identical_on_1000_stored_decisions(fresh_home: Path) -> None:
    res = learn(LearnOptions(dataset="lending-club-default", name=NAME, sample=1500,
                             models=("majority", "gbdt"), progress=False,
                                 gbdt=ONE_THREAD))
    assert res.version is not None
    v = res.version.version
    scorer = Scorer.load(Registry().download(NAME, v), version=v)
    df, _ = load_bundled("lending-club-default")
    recs = records(df.sample(1000, random_state=3), scorer.features)
    # decided one at a time, as the service does
    decisions = [scorer.score([r])[0] for r in recs]
    store = Store(get_settings().resolved_database_url)
    ids = fill_store(store, recs, decisions, model=NAME, version=v, sha256=scorer.sha256)

    report = replay(model=NAME, since="7d")
    assert report.checked == 1000 and report.identical == 1000, report.mismatches[:3]
    assert report.ok and report.versions == {v: 1000}
    assert report.max_probability_diff <= 1e-6

    # a tampered stored decision is reported, naming the application and the field
    flipped = "approve" if decisions[0].decision == "decline" else "decline"
    with store.engine.begin() as conn:
        conn.execute(update(Application).where(Application.id == ids[0])
                     .values(decision=flipped))
    store.close()
    report = replay(model=NAME, since="7d")
    assert not report.ok and report.mismatch_count == 1
    assert report.mismatches[0].application_id == str(ids[0])
    assert report.mismatches[0].field == "decision"
