"""Draft invoices waiting for review: each draft's preview and its approval or rejection.

A new table: the previous version runs on a ledger upgraded to it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 14:32:45.901478
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_invoice_draft",
        sa.Column("draft_id", sa.String(length=64), nullable=False),
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("legal_entity", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("milestone_id", sa.String(length=64), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("subtotal", sa.String(length=64), nullable=False),
        sa.Column("tax", sa.String(length=64), nullable=False),
        sa.Column("total", sa.String(length=64), nullable=False),
        sa.Column("po_number", sa.String(length=64), nullable=True),
        sa.Column("bill_to", sa.JSON(), nullable=True),
        sa.Column("drafted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("invoice_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("draft_id"),
    )
    with op.batch_alter_table("ledger_invoice_draft", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_invoice_draft_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_invoice_draft_legal_entity"), ["legal_entity"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_invoice_draft_status"), ["status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_invoice_draft", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_invoice_draft_status"))
        batch_op.drop_index(batch_op.f("ix_ledger_invoice_draft_legal_entity"))
        batch_op.drop_index(batch_op.f("ix_ledger_invoice_draft_contract_id"))

    op.drop_table("ledger_invoice_draft")
