"""Challenger decisions: shadow and canary results stored beside each application.

Revision ID: 0002_challenger
Revises: 0001_initial
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_challenger"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create challenger_decisions and its indexes."""
    op.create_table(
        "challenger_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.Uuid(), sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(64), nullable=False),
        sa.Column("probabilities", JsonType, nullable=False),
        sa.Column("risk_score", sa.Float(), nullable=True),
        sa.Column("reasons", JsonType, nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_challenger_decisions_application_id", "challenger_decisions",
                    ["application_id"])
    op.create_index("ix_challenger_decisions_created_at", "challenger_decisions", ["created_at"])


def downgrade() -> None:
    """Drop challenger_decisions (its rows are lost)."""
    op.drop_table("challenger_decisions")
