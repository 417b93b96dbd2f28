"""Outbound events: the outbox of events for subscribers (written with the facts that cause
them), the subscriptions, and each event's deliveries (the delivery log).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 14:53:47.331627
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_outbound_delivery",
        sa.Column("delivery_id", sa.String(length=140), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    with op.batch_alter_table("ledger_outbound_delivery", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_outbound_delivery_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_outbound_delivery_event_id"), ["event_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_outbound_delivery_subscription_id"),
            ["subscription_id"],
            unique=False,
        )

    op.create_table(
        "ledger_outbound_event",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("contract_id", sa.String(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("ledger_outbound_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_outbound_event_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_outbound_event_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ledger_outbound_event_type"), ["type"], unique=False)

    op.create_table(
        "ledger_subscription",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id"),
    )


def downgrade() -> None:
    op.drop_table("ledger_subscription")
    with op.batch_alter_table("ledger_outbound_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_outbound_event_type"))
        batch_op.drop_index(batch_op.f("ix_ledger_outbound_event_created_at"))
        batch_op.drop_index(batch_op.f("ix_ledger_outbound_event_contract_id"))

    op.drop_table("ledger_outbound_event")
    with op.batch_alter_table("ledger_outbound_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_outbound_delivery_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_outbound_delivery_event_id"))
        batch_op.drop_index("ix_ledger_outbound_delivery_due")

    op.drop_table("ledger_outbound_delivery")
