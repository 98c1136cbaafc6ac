"""The access audit: audit_log (append-only, each row chained to the previous row's hash) and
audit_head (one row: the chain's head and the anchor a purge leaves).

Revision ID: 0006_audit_log
Revises: 0005_served_models
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_audit_log"
down_revision = "0005_served_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the audit tables and the head row (an empty chain)."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(36), nullable=True),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("endpoint", sa.String(200), nullable=True),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("application_id", sa.String(36), nullable=True),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    for col in ("at", "action", "key_id", "application_id"):
        op.create_index(f"ix_audit_log_{col}", "audit_log", [col])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("anchor_id", sa.Integer, nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "last_hash": "", "anchor_id": 0,
                           "anchor_hash": ""}])


def downgrade() -> None:
    """Drop the audit tables."""
    op.drop_table("audit_head")
    for col in ("at", "action", "key_id", "application_id"):
        op.drop_index(f"ix_audit_log_{col}", table_name="audit_log")
    op.drop_table("audit_log")
