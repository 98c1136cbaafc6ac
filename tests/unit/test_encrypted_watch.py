"""Issue 16: an encrypted store gives the same replay, monitor, performance and retraining
as the same rows stored in clear (1,000 applications; replay identical on every one)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from watch_helpers import add_outcomes, fill_store, records

from loanrisk.config import Settings, get_settings
from loanrisk.datasets import load_bundled
from loanrisk.learn.pipeline import LearnOptions, learn
from loanrisk.registry import Registry
from loanrisk.scoring.scorer import Scorer
from loanrisk.store import Store
from loanrisk.store.crypto import KeyProblem, new_key
from loanrisk.watch.monitor import monitor
from loanrisk.watch.performance import performance
from loanrisk.watch.replay import replay
from loanrisk.watch.retrain import RetrainOptions, extract, learn_from_store

ONE_THREAD = {"n_jobs": 1}
NAME = "default-sealed"
KEYS = f"k1:{new_key()},index:{new_key()}"


def _fill(url: str, recs: list[dict], decisions: list, outcomes: list[str], v: int,
          sha: str) -> None:
    store = Store(url)
    ids = fill_store(store, recs, decisions, model=NAME, version=v, sha256=sha)
    add_outcomes(store, ids, outcomes)
    store.close()


def test_encrypted_store_replays_monitors_and_retrains_as_clear(
        fresh_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOANRISK_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("LOANRISK_ENCRYPTION_KEY_FILE", raising=False)
    monkeypatch.setenv("LOANRISK_ENCRYPTION", "off")  # the clear store, as before encryption
    res = learn(LearnOptions(dataset="lending-club-default", name=NAME, sample=1500,
                             models=("majority", "gbdt"), progress=False, gbdt=ONE_THREAD))
    assert res.version is not None
    v = res.version.version
    scorer = Scorer.load(Registry().download(NAME, v), version=v)
    df, _ = load_bundled("lending-club-default")
    sample = df.sample(1000, random_state=5).reset_index(drop=True)
    recs = records(sample, scorer.features)
    decisions = [scorer.score([r])[0] for r in recs]
    outcomes = sample["Class"].tolist()

    base = get_settings()
    clear_url = f"sqlite:///{tmp_path / 'clear.db'}"
    sealed_url = f"sqlite:///{tmp_path / 'sealed.db'}"
    _fill(clear_url, recs, decisions, outcomes, v, scorer.sha256)
    monkeypatch.setenv("LOANRISK_ENCRYPTION_KEYS", KEYS)
    _fill(sealed_url, recs, decisions, outcomes, v, scorer.sha256)
    clear: Settings = base.model_copy(update={"database_url": clear_url})
    sealed: Settings = base.model_copy(update={"database_url": sealed_url})

    # the sealed store holds no attribute in clear
    store = Store(sealed_url)
    with store.engine.connect() as c:
        raw = c.execute(text("SELECT attributes FROM applications")).scalars().all()
    store.close()
    assert len(raw) == 1000 and all("enc:k1:" in str(a) for a in raw)
    assert not any(str(recs[0][f]) in str(raw[0]) for f in ("annual_inc", "revol_util")
                   if recs[0].get(f) is not None)

    # replay: every one of the 1,000 sealed decisions re-scores identically
    rep = replay(model=NAME, since="7d", settings=sealed)
    assert rep.checked == 1000 and rep.identical == 1000, rep.mismatches[:3]
    assert rep.ok and rep.max_probability_diff <= 1e-6

    # monitor and performance: the same figures as on the clear store
    drift = {tag: monitor(model=NAME, since="7d", settings=s, out_dir=tmp_path / f"m-{tag}")
             for tag, s in (("clear", clear), ("sealed", sealed))}
    assert drift["sealed"].rows == drift["clear"].rows == 1000
    assert {k: a.psi for k, a in drift["sealed"].attributes.items()} == \
        {k: a.psi for k, a in drift["clear"].attributes.items()}
    perf = {tag: performance(model=NAME, settings=s) for tag, s in (("clear", clear),
                                                                     ("sealed", sealed))}
    assert perf["sealed"].periods and perf["sealed"].to_dict() == perf["clear"].to_dict()

    # retraining reads the same table from the sealed store, and learns from it
    t_clear, _, n_clear = extract(clear, model=NAME, since=None, with_dataset=None)
    t_sealed, _, n_sealed = extract(sealed, model=NAME, since=None, with_dataset=None)
    assert n_sealed == n_clear and n_sealed["store"] == 1000
    pd.testing.assert_frame_equal(t_sealed, t_clear)
    out = learn_from_store(RetrainOptions(model=NAME, models=("majority",), promote=False),
                           sealed)
    assert out.rows_from_store == 1000 and out.version is not None

    # without the key: one clear error naming what to set, not garbage
    monkeypatch.delenv("LOANRISK_ENCRYPTION_KEYS")
    with pytest.raises(KeyProblem, match="LOANRISK_ENCRYPTION_KEYS"):
        replay(model=NAME, since="7d", settings=sealed)
