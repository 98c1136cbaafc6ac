"""One real model version shared by the UI tests (learning it takes most of their time)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "src" / "loanrisk" / "ui" / "app.py"


@pytest.fixture(scope="package")
def learned_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A loanrisk home holding lending-club-default v1 (majority + gbdt on 1,500 rows)."""
    from loanrisk.config import get_settings
    from loanrisk.pipeline import LearnOptions, learn

    home = tmp_path_factory.mktemp("ui-home")
    old = os.environ.get("LOANRISK_HOME")
    os.environ["LOANRISK_HOME"] = str(home)
    get_settings.cache_clear()
    # one LightGBM thread: on a shared 2-core machine OpenMP's busy-waiting threads cost more
    learn(LearnOptions(dataset="lending-club-default", sample=1500, models=("majority", "gbdt"),
                       progress=False, gbdt={"n_jobs": 1}))
    yield home
    if old is None:
        os.environ.pop("LOANRISK_HOME", None)
    else:
        os.environ["LOANRISK_HOME"] = old
    get_settings.cache_clear()


@pytest.fixture
def model_home(learned_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Use the shared learned home in this test."""
    from loanrisk.config import get_settings

    monkeypatch.setenv("LOANRISK_HOME", str(learned_home))
    get_settings.cache_clear()
    yield learned_home
    get_settings.cache_clear()


def seed_watch_store(db_url: str, *, weeks: int = 4) -> int:
    """Store lending-club-default v1's evaluation rows as applications decided by v1 over the
    last ``weeks`` weeks, each with its true outcome (what servicing would report later).
    Returns how many were stored."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from loanrisk.config import get_settings
    from loanrisk.registry import Registry
    from loanrisk.scorer import Scorer
    from loanrisk.store import Store
    from loanrisk.store_tables import Application

    settings = get_settings()
    model_dir = Registry(settings).download("lending-club-default", 1)
    scorer = Scorer.load(model_dir, settings=settings, version=1)
    frame = pd.read_parquet(model_dir / "eval.parquet")
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()}
               for row in frame[scorer.features].to_dict("records")]
    truth = [scorer.classes[int(y)] for y in frame["__y__"]]
    now = datetime.now(UTC)
    store = Store(db_url)
    _, key = store.create_key(channel="web")
    for i, (rec, d) in enumerate(zip(records, scorer.score(records), strict=True)):
        row = store.insert_application(Application(
            channel="web", api_key_id=key.id, request_hash=f"{i:064d}", attributes=rec,
            decision=d.decision, probabilities=d.probabilities, risk_score=d.risk_score,
            risk_tier=d.risk_tier, reasons=d.reasons, model_name=scorer.name, model_version=1,
            model_sha256=scorer.sha256,
            created_at=now - timedelta(days=7 * weeks * (i + 0.5) / len(records))))
        store.add_outcome(row.id, outcome=truth[i], source="servicing", api_key_id=key.id)
    store.close()
    return len(records)
