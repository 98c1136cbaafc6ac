"""UI-test helpers: a store seeded as the Watch page expects it."""

from __future__ import annotations


def seed_watch_store(db_url: str, *, weeks: int = 4) -> int:
    """Store lending-club-default v1's evaluation rows as applications decided by v1 over the
    last ``weeks`` weeks, each with its true outcome (what servicing would report later).
    Returns how many were stored."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from loanrisk.config import get_settings
    from loanrisk.registry import Registry
    from loanrisk.scoring.scorer import Scorer
    from loanrisk.store import Store
    from loanrisk.store.tables import Application

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
