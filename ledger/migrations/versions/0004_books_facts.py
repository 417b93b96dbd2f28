"""The books: invoices and credit notes keep their subtotal and tax, payments what was applied
and their rate to the legal entity's currency, and revenue postings are kept with theirs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 04:05:12.018209
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_revenue_fact",
        sa.Column("entry_id", sa.String(length=300), nullable=False),
        sa.Column("contract_id", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
        sa.Column("amount", sa.String(length=64), nullable=False),
        sa.Column("recognised_on", sa.Date(), nullable=False),
        sa.Column("functional_currency", sa.String(), nullable=True),
        sa.Column("exchange_rate", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    with op.batch_alter_table("ledger_revenue_fact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_revenue_fact_contract_id"), ["contract_id"], unique=False
        )

    with op.batch_alter_table("ledger_billing_fact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subtotal", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("tax", sa.String(length=64), nullable=True))

    with op.batch_alter_table("ledger_credit_note_fact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subtotal", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("tax", sa.String(length=64), nullable=True))

    with op.batch_alter_table("ledger_payment_fact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("applied_amount", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("functional_currency", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("exchange_rate", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_payment_fact", schema=None) as batch_op:
        batch_op.drop_column("exchange_rate")
        batch_op.drop_column("functional_currency")
        batch_op.drop_column("applied_amount")

    with op.batch_alter_table("ledger_credit_note_fact", schema=None) as batch_op:
        batch_op.drop_column("tax")
        batch_op.drop_column("subtotal")

    with op.batch_alter_table("ledger_billing_fact", schema=None) as batch_op:
        batch_op.drop_column("tax")
        batch_op.drop_column("subtotal")

    with op.batch_alter_table("ledger_revenue_fact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_revenue_fact_contract_id"))

    op.drop_table("ledger_revenue_fact")
