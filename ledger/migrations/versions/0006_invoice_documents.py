"""Invoice documents: each invoice's and credit note's PDF and e-invoice, their SHA-256, size
and where the archive keeps them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 14:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_invoice_document",
        sa.Column("invoice_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("document_type", sa.String(length=20), nullable=False),
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("location", sa.String(length=1000), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", "kind"),
    )
    with op.batch_alter_table("ledger_invoice_document", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_invoice_document_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_invoice_document_sha256"), ["sha256"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_invoice_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_invoice_document_sha256"))
        batch_op.drop_index(batch_op.f("ix_ledger_invoice_document_contract_id"))

    op.drop_table("ledger_invoice_document")
