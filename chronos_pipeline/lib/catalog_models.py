"""SQLAlchemy 2 tables of the catalog: creators, courses, videos, chat sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Text limits in characters: the columns below, and every check of user input against them
# (the core's ``clean_name`` and the HTTP API's schema), use these.
CREATOR_NAME_CHARS = 200
COURSE_NAME_CHARS = 200
TITLE_CHARS = 300
FILENAME_CHARS = 500
DISPLAY_NAME_CHARS = 100
CHAT_TITLE_CHARS = 200


class Base(DeclarativeBase):
    pass


class CreatorRow(Base):
    __tablename__ = "creators"

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    name: Mapped[str] = mapped_column(String(CREATOR_NAME_CHARS))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The embedding model this creator's chat searches (NULL: the configured default); a
    # re-embedding switches it once every lecture has vectors of the new model.
    embedding_model: Mapped[str | None] = mapped_column(String(120), nullable=True)


class CourseRow(Base):
    __tablename__ = "courses"
    __table_args__ = (Index("ix_courses_creator", "creator_id"),)

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    name: Mapped[str] = mapped_column(String(COURSE_NAME_CHARS))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VideoRow(Base):
    __tablename__ = "videos"
    __table_args__ = (Index("ix_videos_creator", "creator_id"),)

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    course_id: Mapped[str | None] = mapped_column(ForeignKey("courses.id"), nullable=True)
    title: Mapped[str] = mapped_column(String(TITLE_CHARS))
    original_filename: Mapped[str | None] = mapped_column(String(FILENAME_CHARS), nullable=True)
    container: Mapped[str | None] = mapped_column(String(40), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A lesson is a video in a course; its place in the course's order.
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Share of the current stage done (0..1) and the estimated seconds left, for the library.
    progress: Mapped[float | None] = mapped_column(Float, nullable=True)
    progress_eta_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # An unfinished (resumable) upload is forgotten after this instant.
    upload_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    # What the creator should know about a lecture that stays usable (a failed re-embedding).
    notice: Mapped[str | None] = mapped_column(Text, nullable=True)


class VideoStatusEventRow(Base):
    __tablename__ = "video_status_events"
    __table_args__ = (Index("ix_video_status_events_video", "video_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id"))
    status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChatSessionRow(Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (Index("ix_chat_sessions_creator", "creator_id"),
                      Index("ix_chat_sessions_student", "student_id"))

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    course_id: Mapped[str | None] = mapped_column(ForeignKey("courses.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    student_id: Mapped[str | None] = mapped_column(String(19), nullable=True)
    title: Mapped[str | None] = mapped_column(String(CHAT_TITLE_CHARS), nullable=True)


class ChatMessageRow(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_session", "session_id"),)

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    references: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BudgetRow(Base):
    __tablename__ = "budgets"

    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"), primary_key=True)
    monthly_usd: Mapped[str] = mapped_column(String(32))
    hard_limit_usd: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BudgetAlertRow(Base):
    __tablename__ = "budget_alerts"
    __table_args__ = (
        UniqueConstraint("creator_id", "month", "threshold", name="uq_budget_alert"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    month: Mapped[str] = mapped_column(String(7))
    threshold: Mapped[int] = mapped_column(Integer)
    spent_usd: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudentRow(Base):
    __tablename__ = "students"
    __table_args__ = (Index("ix_students_creator", "creator_id"),)

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_CHARS))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(16))
    monthly_cap_usd: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InvitationRow(Base):
    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_course", "course_id"),)

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EnrolmentRow(Base):
    __tablename__ = "enrolments"

    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"), primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebSessionRow(Base):
    __tablename__ = "web_sessions"

    # The SHA-256 of the cookie's token: a stolen database does not sign anyone in.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    student_id: Mapped[str | None] = mapped_column(String(19), nullable=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerCallRow(Base):
    """One provider call counted into the maintained totals (so it is never counted twice)."""

    __tablename__ = "ledger_calls"
    __table_args__ = (Index("ix_ledger_calls_creator_month", "creator_id", "month"),)

    # The ledger's call_id (or, for a record written before call ids, its record_id).
    call_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    creator_id: Mapped[str] = mapped_column(String(19))
    student_id: Mapped[str | None] = mapped_column(String(19), nullable=True)
    month: Mapped[str] = mapped_column(String(7))
    # Money as whole pico-dollars (the ledger's 12 decimal places): exact and summable in SQL
    # on SQLite and PostgreSQL alike.
    cost_pusd: Mapped[int] = mapped_column(BigInteger)
    records: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerTotalRow(Base):
    """A creator's (student_id '') or one student's spend in one UTC month, kept up to date."""

    __tablename__ = "ledger_totals"

    creator_id: Mapped[str] = mapped_column(String(19), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    student_id: Mapped[str] = mapped_column(String(19), primary_key=True)
    cost_pusd: Mapped[int] = mapped_column(BigInteger)
    records: Mapped[int] = mapped_column(BigInteger)
    calls: Mapped[int] = mapped_column(BigInteger)


class LedgerTotalsStateRow(Base):
    """When the totals were last (re)built from the ledger; absent until the first time."""

    __tablename__ = "ledger_totals_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SpendReservationRow(Base):
    """The expected cost of one paid step in flight, held against the creator's hard limit
    (and the student's cap) until the step's real records are on the ledger."""

    __tablename__ = "spend_reservations"
    __table_args__ = (Index("ix_spend_reservations_creator_month", "creator_id", "month"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    creator_id: Mapped[str] = mapped_column(String(19))
    student_id: Mapped[str | None] = mapped_column(String(19), nullable=True)
    month: Mapped[str] = mapped_column(String(7))
    # Whole pico-dollars, as in ledger_totals.
    amount_pusd: Mapped[int] = mapped_column(BigInteger)
    stage: Mapped[str] = mapped_column(String(16))
    # The video (pipeline steps) or chat message (questions) it is held for.
    ref: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A step that crashed never settles: its hold lapses at this instant.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
