"""The signed document archive: each contract's signed document, its SHA-256, size, source
and where it is kept.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 04:02:16.630052
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_signed_document",
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_ref", sa.String(length=200), nullable=False),
        sa.Column("location", sa.String(length=1000), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("contract_id"),
    )
    with op.batch_alter_table("ledger_signed_document", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_signed_document_sha256"), ["sha256"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_signed_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_signed_document_sha256"))

    op.drop_table("ledger_signed_document")
