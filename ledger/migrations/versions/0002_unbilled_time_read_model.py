"""The unbilled time read model: approved time not yet invoiced, priced, per contract and month.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 03:57:41.700195
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_unbilled_time",
        sa.Column("row_key", sa.String(length=300), nullable=False),
        sa.Column("contract_id", sa.String(), nullable=False),
        sa.Column("work_month", sa.String(), nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
        sa.Column("hours", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("unpriced_hours", sa.String(length=64), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("row_key"),
    )
    with op.batch_alter_table("ledger_unbilled_time", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_unbilled_time_contract_id"), ["contract_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_unbilled_time", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_unbilled_time_contract_id"))

    op.drop_table("ledger_unbilled_time")
