"""The versions a service verified and served, with the registry's record of their files.

Revision ID: 0005_served_models
Revises: 0004_key_channels
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

JsonType = sa.JSON().with_variant(JSONB(), "postgresql")

revision = "0005_served_models"
down_revision = "0004_key_channels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create served_models (append-only; empty at first: a service then waits for the
    registry once before it may start from its cache)."""
    op.create_table(
        "served_models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("files", JsonType, nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_served_models_model_name", "served_models", ["model_name"])


def downgrade() -> None:
    """Drop served_models."""
    op.drop_index("ix_served_models_model_name", table_name="served_models")
    op.drop_table("served_models")
