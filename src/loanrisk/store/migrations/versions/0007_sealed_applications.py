"""Encryption at rest: applicant_id and external_ref become text (a sealed value is longer
than 128 characters), and each application gets the id of the key that sealed it and the blind
indexes (HMAC-SHA256) of applicant_id and external_ref. Existing rows stay readable in clear
until `loanrisk keys rotate-data` seals them (batches, resumable).

Revision ID: 0007_sealed_applications
Revises: 0006_audit_log
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sealed_applications"
down_revision = "0006_audit_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Widen the two identifiers, add the key id and blind-index columns."""
    with op.batch_alter_table("applications") as batch:
        batch.alter_column("applicant_id", type_=sa.Text, existing_nullable=True)
        batch.alter_column("external_ref", type_=sa.Text, existing_nullable=True)
        batch.add_column(sa.Column("enc_key_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("applicant_hmac", sa.String(64), nullable=True))
        batch.add_column(sa.Column("external_ref_hmac", sa.String(64), nullable=True))
    op.create_index("ix_applications_applicant_hmac", "applications", ["applicant_hmac"])
    op.create_index("ix_applications_external_ref_hmac", "applications", ["external_ref_hmac"])


def downgrade() -> None:
    """Drop the new columns (sealed values stay sealed: run with the keys to read them)."""
    op.drop_index("ix_applications_external_ref_hmac", table_name="applications")
    op.drop_index("ix_applications_applicant_hmac", table_name="applications")
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("external_ref_hmac")
        batch.drop_column("applicant_hmac")
        batch.drop_column("enc_key_id")
