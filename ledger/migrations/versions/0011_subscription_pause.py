"""Subscriptions an operator can pause: their deliveries wait until they are resumed.

(The subscriptions' secrets are sealed with ``C2C_SECRETS_KEY`` from now on; the column is
unchanged, and secrets stored in clear are sealed on first read or by
``c2c ops subscriptions reencrypt``.)

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-07 18:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_subscription", schema=None) as batch_op:
        batch_op.drop_column("paused_at")
