"""Challenger results in the store (table ``challenger_decisions``, migration 0002); the
comparison of champion and challenger (`loanrisk compare`) is loanrisk.watch.compare.

Roles: ``shadow`` (the challenger's result on an application the champion decided), ``canary``
(the challenger's result that was served) and ``champion`` (the champion's counterfactual on a
canary application). ``applications`` always holds what the client got.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from loanrisk.store.tables import ChallengerDecision, utcnow

if TYPE_CHECKING:
    from loanrisk.serving.challenger import ChallengerResult
    from loanrisk.store import Store


def challenger_rows(application_id: uuid.UUID, results: list[ChallengerResult]
                    ) -> list[dict[str, Any]]:
    """Rows (dicts for ``insert(ChallengerDecision)``) for one application's Routed.extra."""
    now = utcnow()
    rows = []
    for r in results:
        d = r.decision
        rows.append({
            "application_id": application_id, "model_version": r.model_version,
            "model_sha256": r.model_sha256, "role": r.role,
            "decision": d.decision if d is not None else "error",
            "probabilities": d.probabilities if d is not None else {},
            "risk_score": d.risk_score if d is not None else None,
            "reasons": list(d.reasons) if d is not None else [],
            "error": r.error, "latency_ms": r.latency_ms, "created_at": now,
        })
    return rows


def challenger_objects(application_id: uuid.UUID, results: list[ChallengerResult]
                       ) -> list[ChallengerDecision]:
    """ORM rows for one application's Routed.extra (for ``Store.insert_application(extras=)``)."""
    return [ChallengerDecision(**row) for row in challenger_rows(application_id, results)]


def save_results(store: Store, application_id: uuid.UUID,
                 results: list[ChallengerResult]) -> int:
    """Store one application's challenger results (after its row); the number of rows written."""
    rows = challenger_rows(application_id, results)
    if rows:
        with store.engine.begin() as conn:
            conn.execute(insert(ChallengerDecision), rows)
    return len(rows)
