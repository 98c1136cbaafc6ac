"""The application store's tables (SQLAlchemy 2 typed ORM). Migrations live in ``migrations/``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from loanrisk.store.crypto import SealedJson, SealedText


class JsonType(TypeDecorator[Any]):
    """JSON; JSONB on PostgreSQL (imported only there: the SQLite service starts faster)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


def utcnow() -> datetime:
    """Timezone-aware now (UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class ApiKey(Base):
    """An API key: only the SHA-256 of the token is kept."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    hashed_key: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a key
    channel: Mapped[str] = mapped_column(String(32))  # the default: the first allowed channel
    # every channel the key may submit for, comma-separated (migration 0004; NULL: ``channel``)
    channels: Mapped[str | None] = mapped_column(String(200), nullable=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def expired(self, now: datetime | None = None) -> bool:
        """Whether the key's expiry has passed (a key without one never expires)."""
        if self.expires_at is None:
            return False
        at = self.expires_at if self.expires_at.tzinfo else self.expires_at.replace(tzinfo=UTC)
        return at <= (now or utcnow())

    def active(self) -> bool:
        """Neither revoked nor expired: the key authenticates."""
        return not self.revoked and not self.expired()

    def allowed_channels(self) -> tuple[str, ...]:
        """The channels this key may submit for, its default (``channel``) first."""
        more = [c for c in (self.channels or "").split(",") if c and c != self.channel]
        return (self.channel, *more)


class Application(Base):
    """One application, its decision and the model version that made it."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("api_key_id", "idempotency_key",
                                       name="uq_applications_key_idempotency"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 index=True)
    channel: Mapped[str] = mapped_column(String(32))
    api_key_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("api_keys.id"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    # sealed with AES-GCM when keys are configured (loanrisk.store.crypto; migration 0007)
    applicant_id: Mapped[str | None] = mapped_column(SealedText("applicant_id"))
    external_ref: Mapped[str | None] = mapped_column(SealedText("external_ref"))
    attributes: Mapped[dict[str, Any]] = mapped_column(SealedJson("attributes"))
    decision: Mapped[str] = mapped_column(String(64))
    probabilities: Mapped[dict[str, float]] = mapped_column(JsonType)
    risk_score: Mapped[float] = mapped_column()
    risk_tier: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[str]] = mapped_column(JsonType)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int | None] = mapped_column(Integer)
    model_sha256: Mapped[str] = mapped_column(String(64))
    served_by: Mapped[str] = mapped_column(String(16), default="champion")
    enc_key_id: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    applicant_hmac: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    external_ref_hmac: Mapped[str | None] = mapped_column(String(64), index=True, default=None)


class Outcome(Base):
    """The later truth about an application (repaid/defaulted, auditor's decision, grade)."""

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("applications.id"),
                                                      index=True)
    outcome: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    source: Mapped[str | None] = mapped_column(String(64))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ChallengerDecision(Base):
    """A challenger's (or the champion's counterfactual) result on a stored application.

    Roles: ``shadow``, ``canary`` (served) and ``champion`` (the counterfactual on a canary
    application); ``decision`` is ``"error"`` when the challenger failed. Migration 0002.
    """

    __tablename__ = "challenger_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("applications.id"),
                                                      index=True)
    model_version: Mapped[int | None] = mapped_column(Integer)
    model_sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # shadow | canary | champion
    decision: Mapped[str] = mapped_column(String(64))  # "error" when the challenger failed
    probabilities: Mapped[dict[str, float]] = mapped_column(JsonType)
    risk_score: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JsonType)
    error: Mapped[str | None] = mapped_column(String(500))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 index=True)


class ServedModel(Base):
    """A registered version a service verified against the registry and swapped in, with the
    registry's record of its files (migration 0005). Append-only: the newest row per model is
    what a restarting service may serve from its cache without the registry, and only when the
    cached files match this record (see loanrisk.integrity)."""

    __tablename__ = "served_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    model_version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    files: Mapped[dict[str, str]] = mapped_column(JsonType)
    served_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    """One access or change, append-only and hash-chained (migration 0006): ``hash`` is the
    SHA-256 of ``prev_hash`` and the row's canonical JSON (see :mod:`loanrisk.store.audit`).
    ``details`` is that JSON's own text (names, counts, versions: never applicant values)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    key_id: Mapped[str | None] = mapped_column(String(36), index=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(128))
    endpoint: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[int | None] = mapped_column(Integer)
    application_id: Mapped[str | None] = mapped_column(String(36), index=True)
    details: Mapped[str] = mapped_column(String)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The audit chain's one head row (id 1): rows appended so far (``seq``, the last id), the
    last row's hash, and the anchor left by a purge (the hash and id of the last purged row).
    Appending updates it in the same transaction: the row lock serialises writers."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_id: Mapped[int] = mapped_column(Integer)
    anchor_hash: Mapped[str] = mapped_column(String(64))
