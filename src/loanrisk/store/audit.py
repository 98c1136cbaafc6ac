"""The access audit: an append-only, hash-chained table of who read or changed what.

Each row's ``hash`` is SHA-256 over the previous row's hash and the row's canonical JSON (its
id, time, action, key, channel, request id, endpoint, status, application and details, keys
sorted), so editing or deleting a row breaks the chain at that row: :func:`verify` names it.
Appending takes the lock on the one ``audit_head`` row first (``UPDATE ... RETURNING``: a row
lock on PostgreSQL, the write lock on SQLite), so concurrent writers, in one process or many,
append one after the other: ids are consecutive and each row names its predecessor's hash.
The head also keeps the last hash (a deleted tail is seen) and the anchor a purge leaves (the
id and hash of the last purged row: the chain still verifies after a purge, and deleting its
oldest rows otherwise is seen). Details hold names, counts and versions, never applicant values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update

from loanrisk.store.tables import AuditEntry, AuditHead, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

FIELDS = ("id", "at", "action", "key_id", "channel", "request_id", "endpoint", "status",
          "application_id", "details")


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def stamp(ts: datetime) -> str:
    """A time as the chain hashes it (UTC, microseconds, Z): what both stores give back."""
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row: dict[str, Any]) -> str:
    """The row's canonical JSON (FIELDS only, keys sorted, no spaces)."""
    values = {k: row.get(k) for k in FIELDS}
    values["at"] = stamp(row["at"])
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def row_hash(prev: str, row: dict[str, Any]) -> str:
    """SHA-256 hex over the previous hash and the row's canonical JSON."""
    return hashlib.sha256(f"{prev}\n{canonical(row)}".encode()).hexdigest()


def _clip(value: Any, size: int) -> str | None:
    return None if value is None else str(value)[:size]


def append(conn: Connection, action: str, *, key_id: Any = None, channel: str | None = None,
           request_id: str | None = None, endpoint: str | None = None,
           status: int | None = None, application_id: Any = None,
           details: dict[str, Any] | None = None) -> int:
    """Append one row inside the caller's transaction (its commit makes it durable); its id."""
    seq, prev = conn.execute(update(AuditHead).where(AuditHead.id == 1)
                             .values(seq=AuditHead.seq + 1)
                             .returning(AuditHead.seq, AuditHead.last_hash)).one()
    row: dict[str, Any] = {
        "id": int(seq), "at": utcnow(), "action": action[:64], "key_id": _clip(key_id, 36),
        "channel": _clip(channel, 32), "request_id": _clip(request_id, 128),
        "endpoint": _clip(endpoint, 200), "status": status,
        "application_id": _clip(application_id, 36),
        "details": json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str),
    }
    row["at"] = _utc(datetime.fromisoformat(stamp(row["at"]).replace("Z", "+00:00")))
    digest = row_hash(prev, row)
    conn.execute(insert(AuditEntry).values(**row, prev_hash=prev, hash=digest))
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=digest))
    return int(seq)


def as_dict(row: AuditEntry) -> dict[str, Any]:
    """A row as JSON-able data (details decoded)."""
    out: dict[str, Any] = {k: getattr(row, k) for k in FIELDS}
    out["at"] = stamp(row.at)
    out["details"] = json.loads(row.details or "{}")
    out["hash"] = row.hash
    return out


def entries(engine: Engine, *, since: datetime | None = None, key: str | None = None,
            application: str | None = None, action: str | None = None,
            before: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """Rows newest first (by id), filtered; ``before``: only ids below it (the next page)."""
    q = select(AuditEntry)
    if since is not None:
        q = q.where(AuditEntry.at >= since)
    if key:
        q = q.where(AuditEntry.key_id.startswith(key))
    if application:
        q = q.where(AuditEntry.application_id == application)
    if action:
        q = q.where(AuditEntry.action == action)
    if before is not None:
        q = q.where(AuditEntry.id < before)
    q = q.order_by(AuditEntry.id.desc()).limit(limit)
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        return list(s.scalars(q))


@dataclass(frozen=True)
class Verdict:
    """What :func:`verify` found: rows checked, and the first broken row (id and why)."""

    rows: int
    bad_id: int | None = None
    why: str = ""

    @property
    def ok(self) -> bool:
        return self.bad_id is None


def verify(engine: Engine, batch: int = 5000) -> Verdict:
    """Walk the chain from the anchor: consecutive ids, each row's prev_hash the previous
    row's hash, each hash recomputed; the last row must be the head's."""
    with engine.connect() as conn:
        head = conn.execute(select(AuditHead).where(AuditHead.id == 1)).one()
        expected, prev, checked = int(head.anchor_id) + 1, head.anchor_hash, 0
        while True:
            rows = conn.execute(select(*AuditEntry.__table__.columns)
                                .where(AuditEntry.id >= expected)
                                .order_by(AuditEntry.id).limit(batch)).all()
            for r in rows:
                row = dict(r._mapping)
                if row["id"] != expected:
                    return Verdict(checked, expected, f"row {expected} is missing (deleted): "
                                   f"the next row is {row['id']}")
                if row["prev_hash"] != prev:
                    return Verdict(checked, expected, f"row {expected} does not follow row "
                                   f"{expected - 1} (its prev_hash differs: a row was edited, "
                                   "deleted or inserted)")
                if row_hash(prev, row) != row["hash"]:
                    return Verdict(checked, expected, f"row {expected} was edited (its hash "
                                   "does not match its content)")
                prev, expected, checked = row["hash"], expected + 1, checked + 1
            if len(rows) < batch:
                break
    if expected - 1 != int(head.seq) or prev != head.last_hash:
        missing = expected if expected - 1 < int(head.seq) else int(head.seq)
        return Verdict(checked, missing, f"row {missing} is missing (deleted): the chain's head "
                       f"records {head.seq} rows")
    return Verdict(checked)


def purge(engine: Engine, before: datetime, **who: Any) -> int:
    """Delete the rows up to the last one stored before ``before``, keep the last purged row's
    id and hash as the chain's anchor and append an ``audit purge`` row, in one transaction;
    how many rows were deleted."""
    with engine.begin() as conn:
        conn.execute(update(AuditHead).where(AuditHead.id == 1)
                     .values(seq=AuditHead.seq))  # the lock, before reading
        last = conn.execute(select(func.max(AuditEntry.id))
                            .where(AuditEntry.at < _utc(before))).scalar()
        deleted = 0
        if last is not None:
            anchor = conn.execute(select(AuditEntry.hash).where(AuditEntry.id == last)).scalar()
            deleted = conn.execute(delete(AuditEntry).where(AuditEntry.id <= last)).rowcount
            conn.execute(update(AuditHead).where(AuditHead.id == 1)
                         .values(anchor_id=last, anchor_hash=anchor))
        append(conn, "audit purge", details={"before": stamp(before), "rows": deleted,
                                             "anchor_id": last}, **who)
    return int(deleted)
