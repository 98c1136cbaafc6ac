"""Initial store: api_keys, applications, outcomes.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the three tables and their indexes."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("hashed_key", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_api_keys_hashed_key", "api_keys", ["hashed_key"], unique=True)
    op.create_table(
        "applications",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("applicant_id", sa.String(128), nullable=True),
        sa.Column("external_ref", sa.String(128), nullable=True),
        sa.Column("attributes", JsonType, nullable=False),
        sa.Column("decision", sa.String(64), nullable=False),
        sa.Column("probabilities", JsonType, nullable=False),
        sa.Column("risk_score", sa.Float(), nullable=False),
        sa.Column("risk_tier", sa.String(16), nullable=False),
        sa.Column("reasons", JsonType, nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("served_by", sa.String(16), nullable=False),
        sa.UniqueConstraint("api_key_id", "idempotency_key",
                            name="uq_applications_key_idempotency"),
    )
    op.create_index("ix_applications_created_at", "applications", ["created_at"])
    op.create_index("ix_applications_api_key_id", "applications", ["api_key_id"])
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.Uuid(), sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("source", sa.String(64), nullable=True),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
    )
    op.create_index("ix_outcomes_application_id", "outcomes", ["application_id"])


def downgrade() -> None:
    """Drop everything (the store's data is lost)."""
    op.drop_table("outcomes")
    op.drop_table("applications")
    op.drop_table("api_keys")
