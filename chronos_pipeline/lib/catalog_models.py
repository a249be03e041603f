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


class Base(DeclarativeBase):
    pass


class CreatorRow(Base):
    __tablename__ = "creators"

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CourseRow(Base):
    __tablename__ = "courses"
    __table_args__ = (Index("ix_courses_creator", "creator_id"),)

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VideoRow(Base):
    __tablename__ = "videos"
    __table_args__ = (Index("ix_videos_creator", "creator_id"),)

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    course_id: Mapped[str | None] = mapped_column(ForeignKey("courses.id"), nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    original_filename: Mapped[str | None] = mapped_column(String(500), nullable=True)
    container: Mapped[str | None] = mapped_column(String(40), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
    __table_args__ = (Index("ix_chat_sessions_creator", "creator_id"),)

    id: Mapped[str] = mapped_column(String(19), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    course_id: Mapped[str | None] = mapped_column(ForeignKey("courses.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
