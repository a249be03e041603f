"""students, invitations, enrolments, web sessions; lessons, progress, upload expiry

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "students",
        sa.Column("id", sa.String(length=19), nullable=False),
        sa.Column("creator_id", sa.String(length=19), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("api_key_prefix", sa.String(length=16), nullable=False),
        sa.Column("monthly_cap_usd", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_hash"),
    )
    op.create_index("ix_students_creator", "students", ["creator_id"])
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=19), nullable=False),
        sa.Column("creator_id", sa.String(length=19), nullable=False),
        sa.Column("course_id", sa.String(length=19), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.id"]),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_invitations_course", "invitations", ["course_id"])
    op.create_table(
        "enrolments",
        sa.Column("student_id", sa.String(length=19), nullable=False),
        sa.Column("course_id", sa.String(length=19), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"]),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"]),
        sa.PrimaryKeyConstraint("student_id", "course_id"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("creator_id", sa.String(length=19), nullable=False),
        sa.Column("student_id", sa.String(length=19), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["creator_id"], ["creators.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("position", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("progress", sa.Float(), nullable=True))
        batch.add_column(sa.Column("progress_eta_s", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("upload_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("chat_sessions") as batch:
        batch.add_column(sa.Column("student_id", sa.String(length=19), nullable=True))
        batch.add_column(sa.Column("title", sa.String(length=200), nullable=True))
        batch.create_index("ix_chat_sessions_student", ["student_id"])


def downgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_index("ix_chat_sessions_student")
        batch.drop_column("title")
        batch.drop_column("student_id")
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("upload_expires_at")
        batch.drop_column("progress_eta_s")
        batch.drop_column("progress")
        batch.drop_column("position")
    op.drop_table("web_sessions")
    op.drop_table("enrolments")
    op.drop_index("ix_invitations_course", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index("ix_students_creator", table_name="students")
    op.drop_table("students")
