"""Watch-test helpers: a store filled with decided applications, outcomes, a scoped home."""

from __future__ import annotations

import math
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import home  # noqa: E402,F401  (re-exported for the watch tests)

from loanrisk.store import Store  # noqa: E402
from loanrisk.store.tables import Application, Outcome  # noqa: E402


def cell(v: Any) -> Any:
    """A JSON-safe attribute value (NaN -> None, numpy scalars -> Python)."""
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return None if pd.isna(v) else v


def records(df: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    """Rows of ``df`` as stored attribute dicts over ``names``."""
    cols = {n: df[n].tolist() for n in names}
    return [{n: cell(cols[n][i]) for n in names} for i in range(len(df))]


def fill_store(store: Store, recs: list[dict[str, Any]], decisions: list[Any], *, model: str,
               version: int, sha256: str, start: datetime | None = None,
               applicant_ids: list[str] | None = None) -> list[uuid.UUID]:
    """Insert applications (one per record, decided by ``decisions``) in one executemany."""
    _, key = store.create_key(channel="web")
    start = start or datetime.now(UTC) - timedelta(hours=1)
    ids = [uuid.uuid4() for _ in recs]
    rows = [{
        "id": ids[i], "created_at": start + timedelta(seconds=i), "channel": "web",
        "api_key_id": key.id, "idempotency_key": None, "request_hash": "h" * 64,
        "applicant_id": applicant_ids[i] if applicant_ids else None, "external_ref": None,
        "attributes": r, "decision": d.decision, "probabilities": d.probabilities,
        "risk_score": d.risk_score, "risk_tier": d.risk_tier, "reasons": d.reasons,
        "model_name": model, "model_version": version, "model_sha256": sha256,
        "served_by": "champion",
    } for i, (r, d) in enumerate(zip(recs, decisions, strict=True))]
    with store.engine.begin() as conn:
        conn.execute(insert(Application), rows)
    return ids


def add_outcomes(store: Store, ids: list[uuid.UUID], outcomes: list[str]) -> None:
    """Record one outcome per application."""
    rows = [{"application_id": i, "outcome": o, "source": "test",
             "recorded_at": datetime.now(UTC), "api_key_id": None}
            for i, o in zip(ids, outcomes, strict=True)]
    with store.engine.begin() as conn:
        conn.execute(insert(Outcome), rows)
