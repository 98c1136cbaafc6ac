"""API keys may be allowed several channels: api_keys.channels (comma-separated; the first is
the key's default, also kept in api_keys.channel). Existing keys get their one channel.

Revision ID: 0004_key_channels
Revises: 0003_key_expiry
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_key_channels"
down_revision = "0003_key_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the allowed-channels column and give every existing key its one channel."""
    op.add_column("api_keys", sa.Column("channels", sa.String(200), nullable=True))
    op.execute("UPDATE api_keys SET channels = channel WHERE channels IS NULL")


def downgrade() -> None:
    """Drop the column (each key is then bound to its default channel only)."""
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("channels")
