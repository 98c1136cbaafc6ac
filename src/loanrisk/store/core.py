"""The application store: SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL.

Everything about one application (attributes, decision, probabilities, reasons, model version
and SHA-256, channel, idempotency key, request hash) is written in one transaction; a 201 is only
sent after that commit. Idempotency relies on the unique (api_key_id, idempotency_key)
constraint: a concurrent duplicate fails its INSERT and the caller replays the stored row.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, and_, insert, or_, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from loanrisk.errors import LoanriskError
from loanrisk.integrity import ArtifactRecord
from loanrisk.store.crypto import keyring
from loanrisk.store.engine import (
    StoreError,
    head_revision,
    make_engine,
    migrate,
    normalise_url,
    sqlite_dir,
)
from loanrisk.store.tables import (
    ApiKey,
    Application,
    ChallengerDecision,
    Outcome,
    ServedModel,
    utcnow,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

log = logging.getLogger(__name__)
KEY_PREFIX = "lr_"


_APP_COLUMNS = [c.key for c in Application.__table__.columns]
_EXTRA_COLUMNS = [c.key for c in ChallengerDecision.__table__.columns if c.key != "id"]


def match(column: str, value: str) -> Any:
    """``column == value`` for any application column; for applicant_id and external_ref
    through the blind index (or the clear value of a row not sealed yet)."""
    if column not in ("applicant_id", "external_ref"):
        return getattr(Application, column) == value
    clear = type_coerce(getattr(Application, column), Text) == value
    ring = keyring()
    if ring is None:
        return clear
    blind = Application.applicant_hmac if column == "applicant_id" \
        else Application.external_ref_hmac
    return or_(blind == ring.blind(value), and_(blind.is_(None), clear))


class DuplicateApplication(Exception):  # noqa: N818 - a signal, not an error for the user
    """Another request stored an application with the same API key and idempotency key."""


@dataclass
class _Pending:
    """A row waiting for the SQLite group commit."""

    row: Application
    extras: list[ChallengerDecision]
    done: bool = False
    error: Exception | None = None


@dataclass(frozen=True)
class KeyInfo:
    """What a request knows about its API key (never the token itself)."""

    id: uuid.UUID
    channel: str  # the default channel of its applications
    admin: bool
    prefix: str
    channels: tuple[str, ...] = ()  # every channel it may submit for (default first)

    def allows(self, channel: str) -> bool:
        """Whether this key may label an application with ``channel`` (admin keys too: a
        key's channels are what it was created for, whatever else it may do)."""
        return channel == self.channel or channel in self.channels


def hash_key(token: str) -> str:
    """SHA-256 hex of an API key token (what the store keeps)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """Typed access to applications, outcomes and API keys."""

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = normalise_url(url)
        sqlite_dir(self.url)
        self.engine = make_engine(self.url)
        if upgrade and self._revision() != head_revision():  # skip Alembic's import when current
            try:
                migrate(self.url)
            except Exception as exc:
                if isinstance(exc, LoanriskError):
                    raise
                raise StoreError(f"cannot open the store at {self.url.split('@')[-1]}: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        # SQLite has one writer: queueing writers here avoids its sleeping busy-handler (tails)
        self._write_lock = threading.Lock() if self.url.startswith("sqlite") else None
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    # -- served model versions (integrity records, see loanrisk.serving.TrustedRecords) -----
    def remember_served(self, name: str, version: int, record: ArtifactRecord) -> None:
        """Append: ``version`` of ``name`` was verified against the registry and swapped in."""
        with self.sessions.begin() as s:
            s.add(ServedModel(model_name=name, model_version=int(version), sha256=record.sha256,
                              files=dict(record.files), served_at=utcnow()))

    def recall_served(self, name: str) -> tuple[int, ArtifactRecord] | None:
        """The version of ``name`` swapped in last (by any service on this store), and its
        files' record; None when none was."""
        with self.sessions() as s:
            row = s.scalars(select(ServedModel).where(ServedModel.model_name == name)
                            .order_by(ServedModel.served_at.desc(), ServedModel.id.desc())
                            .limit(1)).first()
        if row is None:
            return None
        return int(row.model_version), ArtifactRecord(sha256=row.sha256,
                                                      files=dict(row.files or {}))

    def _revision(self) -> str | None:
        from sqlalchemy import text

        try:
            with self.engine.connect() as c:
                return c.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # no table yet (or no database): migrate
            return None

    def close(self) -> None:
        """Stop the checkpointer (if running) and release pooled connections."""
        self.stop_checkpointer()
        self.engine.dispose()

    # -- SQLite WAL checkpoints -----
    def start_checkpointer(self, every: float = 1.0) -> None:
        """Checkpoint the SQLite WAL from a background thread (PASSIVE: never blocks writers).

        Without it, the commit that crosses SQLite's auto-checkpoint size copies the WAL into the
        database file on the request path (a latency spike). Auto-checkpoint stays on as the
        backstop. Durability does not depend on it: a committed transaction is in the WAL,
        fsynced (synchronous=FULL). No-op for PostgreSQL.
        """
        if self._write_lock is None or self._checkpointer is not None:
            return
        self._stop_checkpoints.clear()
        self._checkpointer = threading.Thread(target=self._checkpoints, args=(every,),
                                              name="loanrisk-wal-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoints(self, every: float) -> None:
        from sqlalchemy import text

        while not self._stop_checkpoints.wait(every):
            try:
                with self.engine.connect() as conn:
                    conn.execute(text("PRAGMA wal_checkpoint(PASSIVE)"))
            except Exception as exc:  # a busy or closing database: try again later
                log.debug("WAL checkpoint skipped: %s", type(exc).__name__)

    def stop_checkpointer(self) -> None:
        """Stop the background checkpoints (idempotent)."""
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            self._checkpointer.join(5)
            self._checkpointer = None

    # -- the access audit (loanrisk.store.audit) -----
    def audit(self, action: str, **what: Any) -> int:
        """Append one row to the access audit, durably, before returning: the one way in
        (``what``: key_id, channel, request_id, endpoint, status, application_id, details)."""
        from loanrisk.store.audit import append

        if self._write_lock is None:
            with self.engine.begin() as conn:
                return append(conn, action, **what)
        with self._write_lock, self.engine.begin() as conn:
            return append(conn, action, **what)

    # -- API keys -----
    def create_key(self, *, channel: str | Sequence[str], admin: bool = False,
                   expires_at: datetime | None = None) -> tuple[str, ApiKey]:
        """A new key (expiring at ``expires_at``, or never) allowed ``channel`` (one, or several:
        the first is its default); returns the token (shown once, never stored) and its row."""
        allowed = list(dict.fromkeys([channel] if isinstance(channel, str) else channel))
        if not allowed or any(not c or "," in c for c in allowed):
            raise StoreError("a key needs at least one channel (names without commas)")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(hashed_key=hash_key(token), prefix=token[:8], channel=allowed[0],
                     channels=",".join(allowed), admin=admin, expires_at=expires_at)
        with self.sessions.begin() as s:
            s.add(row)
        self.audit("key created", endpoint="cli keys create",
                   details={"key": str(row.id), "admin": admin, "channels": allowed})
        return token, row

    def key_for_token(self, token: str) -> KeyInfo | None:
        """The active key with this token, or None (unknown, revoked or expired)."""
        with self.sessions() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.hashed_key == hash_key(token)))
        if row is None or not row.active():
            return None
        return KeyInfo(id=row.id, channel=row.channel, admin=row.admin, prefix=row.prefix,
                       channels=row.allowed_channels())

    def list_keys(self) -> list[ApiKey]:
        """Every key, newest first (hashes only)."""
        with self.sessions() as s:
            return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (or a unique prefix of it). StoreError if none matches."""
        with self.sessions.begin() as s:
            rows = [r for r in s.scalars(select(ApiKey)) if str(r.id).startswith(key_id)
                    or r.prefix == key_id]
            if len(rows) != 1:
                raise StoreError(f"{len(rows)} API keys match {key_id!r}; give the id shown by "
                                 "`loanrisk keys list`")
            s.execute(update(ApiKey).where(ApiKey.id == rows[0].id).values(revoked=True))
            rows[0].revoked = True
        self.audit("key revoked", endpoint="cli keys revoke", details={"key": str(rows[0].id)})
        return rows[0]

    # -- applications -----
    def find_idempotent(self, api_key_id: uuid.UUID, idempotency_key: str) -> Application | None:
        """The application this key already stored under ``idempotency_key``, if any."""
        with self.sessions() as s:
            return s.scalar(select(Application).where(
                Application.api_key_id == api_key_id,
                Application.idempotency_key == idempotency_key))

    def insert_application(self, row: Application,
                           extras: list[ChallengerDecision] | None = None) -> Application:
        """Store one application in one transaction; DuplicateApplication on a concurrent twin.

        ``extras``: its challenger results (shadow / canary), written in the same transaction.

        On SQLite, concurrent writers are group-committed: whoever holds the write lock commits
        every row queued so far in one transaction (one fsync), and each caller returns only
        once its row is committed. Should the group fail (a duplicate), each row is retried in
        its own transaction so only the duplicate fails.
        """
        if self._write_lock is None:
            return self._insert_one(_Pending(row, extras or []))
        pending = _Pending(row, extras or [])
        with self._queue_lock:
            self._queue.append(pending)
        with self._write_lock:
            if not pending.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit_group(batch)
        if pending.error is not None:
            raise pending.error
        return row

    def _add(self, batch: list[_Pending]) -> None:
        """INSERT the batch's applications, then their challenger rows, in one transaction.

        Core executemany, not the ORM's unit of work (a third less CPU per row); the rows get
        their column defaults here so the caller's objects show what was stored.
        """
        now, ring = utcnow(), keyring()
        rows = []
        for p in batch:
            r = p.row
            r.id = r.id or uuid.uuid4()
            r.created_at = r.created_at or now
            r.served_by = r.served_by or "champion"
            if ring is not None:  # sealed by the column types; the key id and blind indexes here
                r.enc_key_id, r.applicant_hmac, r.external_ref_hmac = (
                    ring.active, ring.blind(r.applicant_id), ring.blind(r.external_ref))
            rows.append({k: getattr(r, k) for k in _APP_COLUMNS})
        extras = [{k: getattr(e, k) for k in _EXTRA_COLUMNS} for p in batch for e in p.extras]
        for e in extras:
            e["created_at"] = e["created_at"] or now
        with self.engine.begin() as conn:
            conn.execute(insert(Application), rows)
            if extras:
                conn.execute(insert(ChallengerDecision), extras)

    def _insert_one(self, pending: _Pending) -> Application:
        row = pending.row
        try:
            self._add([pending])
        except IntegrityError as exc:
            if row.idempotency_key is not None:
                raise DuplicateApplication(str(row.idempotency_key)) from exc
            raise
        return row

    def _commit_group(self, batch: list[_Pending]) -> None:
        try:
            self._add(batch)
        except IntegrityError:
            for p in batch:
                try:
                    self._insert_one(p)
                except Exception as exc:  # handed to the caller that owns the row
                    p.error = exc
        except Exception as exc:
            for p in batch:
                p.error = exc
        for p in batch:
            p.done = True

    def list_applications(self, *, api_key_id: uuid.UUID | None, limit: int,
                          before: tuple[datetime, uuid.UUID] | None = None,
                          since: datetime | None = None,
                          where: dict[str, str] | None = None) -> list[Application]:
        """Newest first (created_at, then id): only ``api_key_id``'s rows when given, from
        ``since`` on, with the ``where`` column values, strictly after the ``before`` position
        (keyset pagination: a page never repeats or skips a row while new ones arrive)."""
        q = select(Application)
        if api_key_id is not None:
            q = q.where(Application.api_key_id == api_key_id)
        if since is not None:
            q = q.where(Application.created_at >= since)
        for column, value in (where or {}).items():
            q = q.where(match(column, value))
        if before is not None:
            at, last = before
            q = q.where(or_(Application.created_at < at,
                            and_(Application.created_at == at, Application.id < last)))
        q = q.order_by(Application.created_at.desc(), Application.id.desc()).limit(limit)
        with self.sessions() as s:
            return list(s.scalars(q))

    def get_application(self, app_id: uuid.UUID) -> Application | None:
        """One application by id."""
        with self.sessions() as s:
            return s.get(Application, app_id)

    def add_outcome(self, app_id: uuid.UUID, *, outcome: str, source: str | None,
                    api_key_id: uuid.UUID | None) -> Outcome:
        """Record the later truth about an application."""
        return self.add_outcomes([{"application_id": app_id, "outcome": outcome,
                                   "source": source, "api_key_id": api_key_id}])[0]

    def add_outcomes(self, rows: list[dict[str, Any]]) -> list[Outcome]:
        """Record many outcomes (Outcome's columns; recorded_at None means now) in one
        transaction: all or none."""
        objs = [Outcome(**{k: v for k, v in r.items() if v is not None or k != "recorded_at"})
                for r in rows]
        if objs:
            with self.sessions.begin() as s:
                s.add_all(objs)
        return objs

    def outcomes_of(self, app_id: uuid.UUID) -> list[Outcome]:
        """Outcomes recorded for one application, oldest first."""
        with self.sessions() as s:
            return list(s.scalars(select(Outcome).where(Outcome.application_id == app_id)
                                  .order_by(Outcome.id)))

    def count_applications(self) -> int:
        """How many applications are stored."""
        from sqlalchemy import func

        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(Application)) or 0)

    def session(self) -> Session:
        """A plain session (read-only uses: export, tests)."""
        return self.sessions()
