"""`loanrisk keys rotate-data`: seal every application with the active data key, in batches.

Rows whose ``enc_key_id`` is not the active key (older keys, or clear rows stored before
encryption was turned on) are read (opened with their own key), written back sealed with the
active key with their blind indexes, one transaction per batch: an interrupted run loses at
most its current batch and the next run goes on with the rows still left."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, func, or_, select, update

from loanrisk.store.crypto import KeyProblem, keyring
from loanrisk.store.tables import Application

if TYPE_CHECKING:
    from loanrisk.store import Store


def _stale(active: str):  # type: ignore[no-untyped-def]
    return or_(Application.enc_key_id.is_(None), Application.enc_key_id != active)


def remaining(store: Store) -> int:
    """Applications not sealed with the active key."""
    ring = keyring()
    if ring is None:
        return 0
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(Application)
                            .where(_stale(ring.active))) or 0)


def rotate_data(store: Store, *, batch: int = 1000, max_batches: int | None = None,
                progress: Callable[[int], None] | None = None) -> int:
    """Re-seal stale rows with the active key; how many were re-sealed."""
    ring = keyring()
    if ring is None:
        raise KeyProblem("no encryption key is configured: set LOANRISK_ENCRYPTION_KEYS (or "
                         "LOANRISK_ENCRYPTION_KEY_FILE) first")
    stmt = (update(Application).where(Application.id == bindparam("b_id"))
            .values(attributes=bindparam("b_attributes"),
                    applicant_id=bindparam("b_applicant_id"),
                    external_ref=bindparam("b_external_ref"), enc_key_id=ring.active,
                    applicant_hmac=bindparam("b_ah"), external_ref_hmac=bindparam("b_eh")))
    done, batches = 0, 0
    while max_batches is None or batches < max_batches:
        with store.sessions.begin() as s:
            rows = s.execute(select(Application.id, Application.attributes,
                                    Application.applicant_id, Application.external_ref)
                             .where(_stale(ring.active)).order_by(Application.id)
                             .limit(batch)).all()
            if not rows:
                break
            s.connection().execute(stmt, [
                {"b_id": r.id, "b_attributes": r.attributes, "b_applicant_id": r.applicant_id,
                 "b_external_ref": r.external_ref, "b_ah": ring.blind(r.applicant_id),
                 "b_eh": ring.blind(r.external_ref)} for r in rows])
        done, batches = done + len(rows), batches + 1
        if progress is not None:
            progress(done)
    return done
