"""Cash applied later to an invoice (a payment's unapplied part, a credit note's customer
credit) is kept as a fact, so the AR aging sees the invoice it settled.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:43:23.581043
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_cash_application_fact",
        sa.Column("application_id", sa.String(length=300), nullable=False),
        sa.Column("contract_id", sa.String(), nullable=False),
        sa.Column("invoice_id", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("credit_note_id", sa.String(), nullable=True),
        sa.Column("currency", sa.String(), nullable=False),
        sa.Column("amount", sa.String(length=64), nullable=False),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("application_id"),
    )
    with op.batch_alter_table("ledger_cash_application_fact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_cash_application_fact_contract_id"), ["contract_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_cash_application_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_cash_application_fact_contract_id"))

    op.drop_table("ledger_cash_application_fact")
