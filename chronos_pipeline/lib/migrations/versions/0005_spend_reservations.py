"""spend_reservations: the expected cost of paid steps in flight, held against the hard limit

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00
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
        "spend_reservations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("creator_id", sa.String(length=19), nullable=False),
        sa.Column("student_id", sa.String(length=19), nullable=True),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("amount_pusd", sa.BigInteger(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_spend_reservations_creator_month", "spend_reservations",
                    ["creator_id", "month"])


def downgrade() -> None:
    op.drop_index("ix_spend_reservations_creator_month", table_name="spend_reservations")
    op.drop_table("spend_reservations")
