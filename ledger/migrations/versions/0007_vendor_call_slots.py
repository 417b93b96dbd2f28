"""Vendor call limits held by every worker together: a lock row per vendor and the slots
taken (each call's start, lease and end).

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-07 14:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_call_limit",
        sa.Column("vendor", sa.String(length=100), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("vendor"),
    )
    op.create_table(
        "ledger_call_slot",
        sa.Column("lease_id", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=300), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("lease_id"),
    )
    with op.batch_alter_table("ledger_call_slot", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_call_slot_vendor", ["vendor"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_call_slot", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_call_slot_vendor")
    op.drop_table("ledger_call_slot")
    op.drop_table("ledger_call_limit")
