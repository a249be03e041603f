"""ledger_calls and ledger_totals: month-to-date spend kept in step with the cost ledger

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00
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
        "ledger_calls",
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("creator_id", sa.String(length=19), nullable=False),
        sa.Column("student_id", sa.String(length=19), nullable=True),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("cost_pusd", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("call_id"),
    )
    op.create_index("ix_ledger_calls_creator_month", "ledger_calls", ["creator_id", "month"])
    op.create_table(
        "ledger_totals",
        sa.Column("creator_id", sa.String(length=19), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("student_id", sa.String(length=19), nullable=False),
        sa.Column("cost_pusd", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("creator_id", "month", "student_id"),
    )
    op.create_table(
        "ledger_totals_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # Totals start empty and unseeded: the first read fills them from the ledger already
    # written (LedgerTotals.ensure_seeded), as `chronos costs rebuild-totals` would.


def downgrade() -> None:
    op.drop_table("ledger_totals_state")
    op.drop_table("ledger_totals")
    op.drop_index("ix_ledger_calls_creator_month", table_name="ledger_calls")
    op.drop_table("ledger_calls")
