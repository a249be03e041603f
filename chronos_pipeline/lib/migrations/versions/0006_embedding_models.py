"""embedding models: the model each creator's chat searches, and a note on a ready lecture

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("creators") as batch:
        # NULL: the deployment's configured embedding model.
        batch.add_column(sa.Column("embedding_model", sa.String(length=120), nullable=True))
    with op.batch_alter_table("videos") as batch:
        # Something the creator should know about a lecture that stays usable (a failed
        # re-embedding: chat still answers from the old vectors).
        batch.add_column(sa.Column("notice", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("notice")
    with op.batch_alter_table("creators") as batch:
        batch.drop_column("embedding_model")
