"""Room for the longest ids: a section of a consolidated invoice is a draft row under
``SEC-{contract}-{period}`` (76 characters for a contract id of 64), and a consolidated
invoice's documents belong to its customer billing workflow (``customer-billing-…``, up to
111). PostgreSQL refused them at 64 characters; SQLite never checked.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 23:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

WIDENED = (
    ("ledger_invoice_draft", "draft_id", False),
    ("ledger_invoice_draft", "contract_id", False),
    ("ledger_invoice_draft", "invoice_id", True),
    ("ledger_invoice_document", "contract_id", False),
)


def _resize(length_from: int, length_to: int) -> None:
    for table in sorted({t for t, _, _ in WIDENED}):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, nullable in WIDENED:
                if name != table:
                    continue
                batch_op.alter_column(
                    column,
                    existing_type=sa.String(length=length_from),
                    type_=sa.String(length=length_to),
                    existing_nullable=nullable,
                )


def upgrade() -> None:
    _resize(64, 200)


def downgrade() -> None:
    _resize(200, 64)
