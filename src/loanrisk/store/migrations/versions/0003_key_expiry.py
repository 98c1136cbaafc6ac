"""API keys may expire: api_keys.expires_at (NULL: never).

Revision ID: 0003_key_expiry
Revises: 0002_challenger
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_key_expiry"
down_revision = "0002_challenger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable expiry column (existing keys never expire)."""
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the expiry column (keys then never expire)."""
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
