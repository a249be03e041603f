"""The catalog: creators and their API keys, courses, videos and their status, chat history.

SQLite in the data directory by default, PostgreSQL when ``CHRONOS_DATABASE_URL`` is set.
Every read a creator can trigger takes the creator's id, so no query returns another
creator's rows. The schema is owned by Alembic (``migrations/``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, Engine, create_engine, delete, event, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from chronos_pipeline.lib import ids
from chronos_pipeline.lib.catalog_models import (
    CHAT_TITLE_CHARS,
    COURSE_NAME_CHARS,
    CREATOR_NAME_CHARS,
    FILENAME_CHARS,
    TITLE_CHARS,
    BudgetAlertRow,
    BudgetRow,
    ChatMessageRow,
    ChatSessionRow,
    CourseRow,
    CreatorRow,
    EnrolmentRow,
    InvitationRow,
    StudentRow,
    VideoRow,
    VideoStatusEventRow,
    WebSessionRow,
)
from chronos_pipeline.lib.catalog_people import (
    CREATOR_KEY_PREFIX,
    PeopleMixin,
    _aware,
    _now,
    clean_name,
    hash_api_key,
)
from chronos_pipeline.lib.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PipelineStateError,
    StorageBusy,
    ValidationError,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class VideoStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    UPLOADED = "uploaded"
    QUEUED = "queued"
    TRANSCRIBING = "transcribing"
    CHUNKING = "chunking"
    EMBEDDING = "embedding"
    READY = "ready"
    FAILED = "failed"
    # Files, transcript, vectors gone; the row stays so cost records keep a title.
    DELETED = "deleted"


# What a creator sees as lectures: neither an unfinished upload nor a deleted lecture.
LISTED = tuple(s.value for s in VideoStatus
               if s not in (VideoStatus.AWAITING_UPLOAD, VideoStatus.DELETED))
# A pipeline step is working on the video's files right now.
PROCESSING = (VideoStatus.TRANSCRIBING, VideoStatus.CHUNKING, VideoStatus.EMBEDDING)
# The pipeline has nothing left to do for a video in one of these: a manifest seen again (a
# fresh Dagster instance, a replayed or touched manifest) must not start a run that pays
# again. A failed lecture runs again only through an explicit retry (which sets
# ``uploaded``), a ready one only through an explicit re-embed or backfill.
SETTLED = (VideoStatus.READY, VideoStatus.FAILED, VideoStatus.DELETED)


@dataclass(frozen=True)
class Creator:
    id: str
    name: str
    api_key_prefix: str
    created_at: datetime


@dataclass(frozen=True)
class Course:
    id: str
    creator_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Video:
    id: str
    creator_id: str
    course_id: str | None
    title: str
    original_filename: str | None
    container: str | None
    duration_s: float | None
    size_bytes: int | None
    status: VideoStatus
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    position: int | None = None
    progress: float | None = None
    progress_eta_s: float | None = None
    upload_expires_at: datetime | None = None
    notice: str | None = None


@dataclass(frozen=True)
class StatusEvent:
    status: VideoStatus
    message: str | None
    at: datetime


@dataclass(frozen=True)
class ChatSession:
    id: str
    creator_id: str
    course_id: str | None
    created_at: datetime
    student_id: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    id: str
    session_id: str
    role: str
    content: str
    references: list[dict[str, Any]]
    created_at: datetime


def _creator(row: CreatorRow) -> Creator:
    return Creator(row.id, row.name, row.api_key_prefix, _aware(row.created_at))


def _course(row: CourseRow) -> Course:
    return Course(row.id, row.creator_id, row.name, _aware(row.created_at))


def _video(row: VideoRow) -> Video:
    return Video(
        id=row.id,
        creator_id=row.creator_id,
        course_id=row.course_id,
        title=row.title,
        original_filename=row.original_filename,
        container=row.container,
        duration_s=row.duration_s,
        size_bytes=row.size_bytes,
        status=VideoStatus(row.status),
        error_message=row.error_message,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        position=row.position,
        progress=row.progress,
        progress_eta_s=row.progress_eta_s,
        upload_expires_at=_aware(row.upload_expires_at) if row.upload_expires_at else None,
        notice=row.notice,
    )


def _session(row: ChatSessionRow) -> ChatSession:
    return ChatSession(row.id, row.creator_id, row.course_id, _aware(row.created_at),
                       row.student_id, row.title)


def _message(row: ChatMessageRow) -> ChatMessage:
    return ChatMessage(
        row.id, row.session_id, row.role, row.content, list(row.references or []),
        _aware(row.created_at),
    )


def migrate(url: str) -> None:
    """Bring the catalog schema at ``url`` to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


@dataclass(frozen=True)
class Budget:
    creator_id: str
    monthly_usd: Decimal
    hard_limit_usd: Decimal


@dataclass(frozen=True)
class BudgetAlert:
    month: str
    threshold: int
    spent_usd: Decimal
    at: datetime


class _BudgetMixin:
    """Budgets and their alerts (mixed into Catalog to keep the session handling in one place)."""

    _tx: Any

    def set_budget(self, creator_id: str, monthly_usd: Decimal,
                   hard_limit_usd: Decimal | None = None) -> Budget:
        hard = monthly_usd if hard_limit_usd is None else hard_limit_usd
        if monthly_usd <= 0 or hard <= 0:
            raise ValidationError("budgets must be positive amounts in USD")
        with self._tx() as session:
            if session.get(CreatorRow, creator_id) is None:
                raise NotFoundError(f"no creator {creator_id}")
            row = session.get(BudgetRow, creator_id)
            if row is None:
                row = BudgetRow(creator_id=creator_id)
                session.add(row)
            row.monthly_usd = str(monthly_usd)
            row.hard_limit_usd = str(hard)
            row.updated_at = _now()
        return Budget(creator_id, monthly_usd, hard)

    def get_budget(self, creator_id: str) -> Budget | None:
        with self._tx() as session:
            row = session.get(BudgetRow, creator_id)
            if row is None:
                return None
            return Budget(creator_id, Decimal(row.monthly_usd), Decimal(row.hard_limit_usd))

    def record_budget_alert(self, creator_id: str, month: str, threshold: int,
                            spent_usd: Decimal) -> bool:
        """Record that spend crossed ``threshold`` % this month; False if already recorded."""
        with self._tx() as session:
            exists = session.scalars(select(BudgetAlertRow).where(
                BudgetAlertRow.creator_id == creator_id, BudgetAlertRow.month == month,
                BudgetAlertRow.threshold == threshold)).first()
            if exists is not None:
                return False
            session.add(BudgetAlertRow(creator_id=creator_id, month=month, threshold=threshold,
                                       spent_usd=str(spent_usd), at=_now()))
        return True

    def budget_alerts(self, creator_id: str) -> list[BudgetAlert]:
        with self._tx() as session:
            rows = session.scalars(select(BudgetAlertRow).where(
                BudgetAlertRow.creator_id == creator_id).order_by(BudgetAlertRow.id)).all()
            return [BudgetAlert(r.month, r.threshold, Decimal(r.spent_usd), _aware(r.at))
                    for r in rows]


class Catalog(_BudgetMixin, PeopleMixin):
    """Typed access to the catalog database."""

    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if migrate_schema:
            migrate(url)
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as exc:
            if "locked" in str(exc):
                raise StorageBusy("the catalog database is busy; try again") from exc
            raise

    # creators -------------------------------------------------------------------------
    def create_creator(self, name: str) -> tuple[Creator, str]:
        """Create a creator; returns it and its API key (shown once, stored hashed)."""
        name = clean_name(name, "the creator's name", CREATOR_NAME_CHARS)
        api_key = CREATOR_KEY_PREFIX + secrets.token_urlsafe(32)
        row = CreatorRow(
            id=ids.new_id("creator"),
            name=name,
            api_key_hash=hash_api_key(api_key),
            api_key_prefix=api_key[:12],
            created_at=_now(),
        )
        with self._tx() as session:
            session.add(row)
        return _creator(row), api_key

    def rotate_api_key(self, creator_id: str) -> str:
        api_key = CREATOR_KEY_PREFIX + secrets.token_urlsafe(32)
        with self._tx() as session:
            row = session.get(CreatorRow, creator_id)
            if row is None:
                raise NotFoundError(f"no creator {creator_id}")
            row.api_key_hash = hash_api_key(api_key)
            row.api_key_prefix = api_key[:12]
        return api_key

    def authenticate(self, api_key: str | None) -> Creator:
        if not api_key:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
        with self._tx() as session:
            row = session.scalars(
                select(CreatorRow).where(CreatorRow.api_key_hash == hash_api_key(api_key))
            ).one_or_none()
            if row is None:
                raise AuthenticationError("invalid API key")
            return _creator(row)

    def get_creator(self, creator_id: str) -> Creator:
        with self._tx() as session:
            row = session.get(CreatorRow, ids.require(creator_id, "creator"))
            if row is None:
                raise NotFoundError(f"no creator {creator_id}")
            return _creator(row)

    def embedding_model(self, creator_id: str) -> str | None:
        """The embedding model the creator's chat searches; None: the configured default."""
        with self._tx() as session:
            row = session.get(CreatorRow, ids.require(creator_id, "creator"))
            if row is None:
                raise NotFoundError(f"no creator {creator_id}")
            return row.embedding_model

    def set_embedding_model(self, creator_id: str, model: str | None) -> None:
        with self._tx() as session:
            row = session.get(CreatorRow, ids.require(creator_id, "creator"))
            if row is None:
                raise NotFoundError(f"no creator {creator_id}")
            row.embedding_model = model

    def set_notice(self, video_id: str, notice: str | None) -> None:
        """Note something about a lecture without changing its status (None clears it)."""
        with self._tx() as session:
            row = session.get(VideoRow, video_id)
            if row is None:
                raise NotFoundError(f"no video {video_id}")
            row.notice = notice
            row.updated_at = _now()

    def list_creators(self) -> list[Creator]:
        with self._tx() as session:
            rows = session.scalars(select(CreatorRow).order_by(CreatorRow.created_at)).all()
            return [_creator(r) for r in rows]

    # courses --------------------------------------------------------------------------
    def create_course(self, creator_id: str, name: str) -> Course:
        name = clean_name(name, "the course name", COURSE_NAME_CHARS)
        row = CourseRow(id=ids.new_id("course"), creator_id=creator_id, name=name,
                        created_at=_now())
        with self._tx() as session:
            session.add(row)
        return _course(row)

    def rename_course(self, creator_id: str, course_id: str, name: str) -> Course:
        name = clean_name(name, "the course name", COURSE_NAME_CHARS)
        self.get_course(creator_id, course_id)
        with self._tx() as session:
            row = session.get(CourseRow, course_id)
            assert row is not None
            row.name = name
            return _course(row)

    def get_course(self, creator_id: str, course_id: str) -> Course:
        ids.require(course_id, "course")
        with self._tx() as session:
            row = session.get(CourseRow, course_id)
            if row is None or row.creator_id != creator_id:
                raise NotFoundError(f"unknown course {course_id}")
            return _course(row)

    def list_courses(self, creator_id: str) -> list[Course]:
        with self._tx() as session:
            rows = session.scalars(
                select(CourseRow).where(CourseRow.creator_id == creator_id)
                .order_by(CourseRow.created_at)
            ).all()
            return [_course(r) for r in rows]

    # videos ---------------------------------------------------------------------------
    def create_video(
        self, creator_id: str, title: str, course_id: str | None = None,
        original_filename: str | None = None, *, upload_ttl_s: float = 24 * 3600,
    ) -> Video:
        title = clean_name(title, "the title", TITLE_CHARS)
        if original_filename:
            original_filename = clean_name(original_filename, "the file name",
                                           FILENAME_CHARS)
        if course_id is not None:
            self.get_course(creator_id, course_id)
        now = _now()
        row = VideoRow(
            id=ids.new_id("video"), creator_id=creator_id, course_id=course_id, title=title,
            original_filename=original_filename, status=VideoStatus.AWAITING_UPLOAD.value,
            created_at=now, updated_at=now,
            upload_expires_at=now + timedelta(seconds=upload_ttl_s),
        )
        with self._tx() as session:
            if course_id is not None:
                row.position = self._next_position(session, course_id)
            session.add(row)
            session.add(VideoStatusEventRow(video_id=row.id, status=row.status, at=now))
        return _video(row)

    @staticmethod
    def _next_position(session: Session, course_id: str) -> int:
        top = session.scalar(select(func.max(VideoRow.position))
                             .where(VideoRow.course_id == course_id))
        return 0 if top is None else int(top) + 1

    def get_video(self, creator_id: str, video_id: str) -> Video:
        """The creator's video, or NotFoundError (also for another creator's video)."""
        ids.require(video_id, "video")
        with self._tx() as session:
            row = session.get(VideoRow, video_id)
            if (row is None or row.creator_id != creator_id
                    or row.status == VideoStatus.DELETED.value):
                raise NotFoundError(f"no video {video_id}")
            return _video(row)

    def find_video(self, video_id: str) -> Video:
        """Any creator's video: for the pipeline and operators, never for a request."""
        ids.require(video_id, "video")
        with self._tx() as session:
            row = session.get(VideoRow, video_id)
            if row is None:
                raise NotFoundError(f"no video {video_id}")
            return _video(row)

    def list_videos(
        self, creator_id: str, course_id: str | None = None, *,
        course_ids: list[str] | None = None, include_unlisted: bool = False,
    ) -> list[Video]:
        """The creator's lectures in lesson order (``course_ids``: only those courses').

        Unfinished uploads and deleted lectures are not lectures: they are left out unless
        ``include_unlisted``.
        """
        with self._tx() as session:
            query = select(VideoRow).where(VideoRow.creator_id == creator_id)
            if course_id is not None:
                query = query.where(VideoRow.course_id == course_id)
            if course_ids is not None:
                query = query.where(VideoRow.course_id.in_(course_ids))
            if not include_unlisted:
                query = query.where(VideoRow.status.in_(LISTED))
            rows = session.scalars(query.order_by(
                VideoRow.course_id, VideoRow.position, VideoRow.created_at)).all()
            return [_video(r) for r in rows]

    def set_progress(self, video_id: str, progress: float | None,
                     eta_s: float | None = None) -> None:
        """The current stage's share done and seconds left (no status event: it is often)."""
        with self._tx() as session:
            row = session.get(VideoRow, video_id)
            if row is None:
                raise NotFoundError(f"no video {video_id}")
            row.progress = None if progress is None else min(max(progress, 0.0), 1.0)
            row.progress_eta_s = eta_s
            row.updated_at = _now()

    def rename_video(self, creator_id: str, video_id: str, title: str) -> Video:
        title = clean_name(title, "the title", TITLE_CHARS)
        self.get_video(creator_id, video_id)
        with self._tx() as session:
            row = session.get(VideoRow, video_id)
            assert row is not None
            row.title = title
            row.updated_at = _now()
            return _video(row)

    def move_lesson(self, creator_id: str, video_id: str, position: int) -> list[Video]:
        """Put a lesson at ``position`` (0-based) in its course; returns the new order."""
        video = self.get_video(creator_id, video_id)
        if video.course_id is None:
            raise ValidationError(f"video {video_id} is not a lesson of any course")
        with self._tx() as session:
            rows = list(session.scalars(
                select(VideoRow).where(VideoRow.course_id == video.course_id,
                                       VideoRow.status.in_(LISTED))
                .order_by(VideoRow.position, VideoRow.created_at)).all())
            moving = next(r for r in rows if r.id == video_id)
            rows.remove(moving)
            rows.insert(min(max(position, 0), len(rows)), moving)
            for index, row in enumerate(rows):
                row.position = index
            return [_video(r) for r in rows]

    def set_video_course(self, creator_id: str, video_id: str,
                         course_id: str | None) -> Video:
        """Make a lecture a lesson of ``course_id`` (at the end), or of no course."""
        self.get_video(creator_id, video_id)
        if course_id is not None:
            self.get_course(creator_id, course_id)
        with self._tx() as session:
            row = session.get(VideoRow, video_id)
            assert row is not None
            row.course_id = course_id
            row.position = (self._next_position(session, course_id)
                            if course_id is not None else None)
            row.updated_at = _now()
            return _video(row)

    def mark_video_deleted(self, video_id: str) -> Video:
        """Keep the row (cost records name it) but never list or serve it again."""
        return self.set_status(video_id, VideoStatus.DELETED)

    def claim_for_deletion(self, creator_id: str, video_id: str) -> Video:
        """Mark the creator's lecture deleted unless a pipeline step is working on it.

        One conditional UPDATE, so a step cannot start between the check and the mark (a
        step that tries afterwards finds the video deleted and stops).
        """
        video = self.get_video(creator_id, video_id)
        now = _now()
        with self._tx() as session:
            taken = cast(CursorResult[Any], session.execute(
                update(VideoRow)
                .where(VideoRow.id == video_id,
                       VideoRow.status.not_in([s.value for s in PROCESSING]),
                       VideoRow.status != VideoStatus.DELETED.value)
                .values(status=VideoStatus.DELETED.value, error_message=None, progress=None,
                        progress_eta_s=None, updated_at=now)
            ))
            if taken.rowcount != 1:
                raise ConflictError(
                    f"lecture {video_id} is being processed ({video.status.value}); "
                    "delete it when it is ready or failed"
                )
            session.add(VideoStatusEventRow(video_id=video_id,
                                            status=VideoStatus.DELETED.value, at=now))
        return self.find_video(video_id)

    def mark_for_retry(self, video_id: str) -> tuple[Video, int]:
        """Send a failed video back to ``uploaded``; returns it and its retry number (1, 2…).

        The number is how many times the video was uploaded before, so it needs no column
        of its own: each attempt leaves an ``uploaded`` status event (message ``retry n``).
        """
        now = _now()
        with self._tx() as session:
            taken = cast(CursorResult[Any], session.execute(
                update(VideoRow)
                .where(VideoRow.id == video_id, VideoRow.status == VideoStatus.FAILED.value)
                .values(status=VideoStatus.UPLOADED.value, error_message=None, progress=None,
                        progress_eta_s=None, updated_at=now)
            ))
            if taken.rowcount != 1:
                current = session.get(VideoRow, video_id)
                if current is None:
                    raise NotFoundError(f"no video {video_id}")
                raise ConflictError(
                    f"only a failed lecture can be retried; {video_id} is {current.status}"
                )
            attempt = int(session.scalar(
                select(func.count()).select_from(VideoStatusEventRow).where(
                    VideoStatusEventRow.video_id == video_id,
                    VideoStatusEventRow.status == VideoStatus.UPLOADED.value)) or 0)
            session.add(VideoStatusEventRow(video_id=video_id, status=VideoStatus.UPLOADED.value,
                                            message=f"retry {attempt}", at=now))
        return self.find_video(video_id), attempt

    def library_rows(self, creator_id: str, course_ids: list[str] | None = None
                     ) -> list[tuple[str, str | None, int | None, datetime]]:
        """(id, course, position, updated_at) of the listed lectures: a cheap change check."""
        with self._tx() as session:
            query = select(VideoRow.id, VideoRow.course_id, VideoRow.position,
                           VideoRow.updated_at).where(VideoRow.creator_id == creator_id,
                                                      VideoRow.status.in_(LISTED))
            if course_ids is not None:
                query = query.where(VideoRow.course_id.in_(course_ids))
            return [(vid, course, position, _aware(at))
                    for vid, course, position, at in session.execute(query.order_by(VideoRow.id))]

    def delete_creator_rows(self, creator_id: str) -> None:
        """Every catalog row of the creator, in one transaction (the ledger is not here)."""
        with self._tx() as session:
            if session.get(CreatorRow, creator_id) is None:
                raise NotFoundError(f"no creator {creator_id}")
            chats = select(ChatSessionRow.id).where(ChatSessionRow.creator_id == creator_id)
            students = select(StudentRow.id).where(StudentRow.creator_id == creator_id)
            courses = select(CourseRow.id).where(CourseRow.creator_id == creator_id)
            videos = select(VideoRow.id).where(VideoRow.creator_id == creator_id)
            for statement in (
                delete(ChatMessageRow).where(ChatMessageRow.session_id.in_(chats)),
                delete(ChatSessionRow).where(ChatSessionRow.creator_id == creator_id),
                delete(WebSessionRow).where(WebSessionRow.creator_id == creator_id),
                delete(EnrolmentRow).where(EnrolmentRow.student_id.in_(students)
                                           | EnrolmentRow.course_id.in_(courses)),
                delete(InvitationRow).where(InvitationRow.creator_id == creator_id),
                delete(StudentRow).where(StudentRow.creator_id == creator_id),
                delete(BudgetAlertRow).where(BudgetAlertRow.creator_id == creator_id),
                delete(BudgetRow).where(BudgetRow.creator_id == creator_id),
                delete(VideoStatusEventRow).where(VideoStatusEventRow.video_id.in_(videos)),
                delete(VideoRow).where(VideoRow.creator_id == creator_id),
                delete(CourseRow).where(CourseRow.creator_id == creator_id),
                delete(CreatorRow).where(CreatorRow.id == creator_id),
            ):
                session.execute(statement)

    def extend_upload(self, video_id: str, until: datetime) -> None:
        with self._tx() as session:
            row = session.get(VideoRow, video_id)
            if row is None:
                raise NotFoundError(f"no video {video_id}")
            row.upload_expires_at = until

    def expired_uploads(self, now: datetime | None = None) -> list[Video]:
        """Unfinished uploads whose time ran out (any creator): for the cleaner."""
        now = now or _now()
        with self._tx() as session:
            rows = session.scalars(select(VideoRow).where(
                VideoRow.status == VideoStatus.AWAITING_UPLOAD.value,
                VideoRow.upload_expires_at < now)).all()
            return [_video(r) for r in rows]

    def titles(self, video_ids: list[str]) -> dict[str, str]:
        if not video_ids:
            return {}
        with self._tx() as session:
            rows = session.execute(
                select(VideoRow.id, VideoRow.title).where(VideoRow.id.in_(video_ids))
            ).all()
            return {vid: title for vid, title in rows}

    def record_upload(
        self, video_id: str, *, container: str, duration_s: float, size_bytes: int
    ) -> Video:
        with self._tx() as session:
            row = session.get(VideoRow, video_id)
            if row is None:
                raise NotFoundError(f"no video {video_id}")
            row.container = container
            row.duration_s = duration_s
            row.size_bytes = size_bytes
            row.updated_at = _now()
            return _video(row)

    def set_status(self, video_id: str, status: VideoStatus, message: str | None = None) -> Video:
        """Move a video to ``status``; a failure keeps its message for the creator."""
        now = _now()
        with self._tx() as session:
            row = session.get(VideoRow, video_id)
            if row is None:
                raise NotFoundError(f"no video {video_id}")
            if row.status == VideoStatus.DELETED.value and status is not VideoStatus.DELETED:
                raise PipelineStateError(f"video {video_id} was deleted")
            row.status = status.value
            row.error_message = message if status is VideoStatus.FAILED else None
            # A new stage (or the end) starts with no progress of its own yet.
            row.progress = None
            row.progress_eta_s = None
            row.updated_at = now
            session.add(VideoStatusEventRow(video_id=video_id, status=status.value,
                                            message=message, at=now))
            return _video(row)

    def delete_video(self, video_id: str) -> None:
        """Remove a video that never finished uploading (and its status events)."""
        with self._tx() as session:
            session.execute(
                delete(VideoStatusEventRow).where(VideoStatusEventRow.video_id == video_id)
            )
            session.execute(delete(VideoRow).where(VideoRow.id == video_id))

    def status_history(self, video_id: str) -> list[StatusEvent]:
        with self._tx() as session:
            rows = session.scalars(
                select(VideoStatusEventRow).where(VideoStatusEventRow.video_id == video_id)
                .order_by(VideoStatusEventRow.id)
            ).all()
            return [StatusEvent(VideoStatus(r.status), r.message, _aware(r.at)) for r in rows]

    # chat -----------------------------------------------------------------------------
    def create_chat_session(self, creator_id: str, course_id: str | None,
                            student_id: str | None = None,
                            title: str | None = None) -> ChatSession:
        row = ChatSessionRow(id=ids.new_id("chat_session"), creator_id=creator_id,
                             course_id=course_id, created_at=_now(), student_id=student_id,
                             title=title[:CHAT_TITLE_CHARS] if title else None)
        with self._tx() as session:
            session.add(row)
        return _session(row)

    def get_chat_session(self, creator_id: str, session_id: str,
                         student_id: str | None = None) -> ChatSession:
        """One of the asker's sessions: a student's own, or the creator's own."""
        ids.require(session_id, "chat_session")
        with self._tx() as session:
            row = session.get(ChatSessionRow, session_id)
            if row is None or row.creator_id != creator_id or row.student_id != student_id:
                raise NotFoundError(f"no chat session {session_id}")
            return _session(row)

    def rename_chat_session(self, session_id: str, title: str) -> None:
        with self._tx() as session:
            row = session.get(ChatSessionRow, session_id)
            if row is None:
                raise NotFoundError(f"no chat session {session_id}")
            row.title = title[:200]

    def list_chat_sessions(self, creator_id: str,
                           student_id: str | None = None) -> list[ChatSession]:
        with self._tx() as session:
            query = select(ChatSessionRow).where(ChatSessionRow.creator_id == creator_id)
            query = query.where(ChatSessionRow.student_id.is_(None) if student_id is None
                                else ChatSessionRow.student_id == student_id)
            rows = session.scalars(query.order_by(ChatSessionRow.created_at)).all()
            return [_session(r) for r in rows]

    def add_chat_message(
        self, session_id: str, role: str, content: str,
        references: list[dict[str, Any]] | None = None, message_id: str | None = None,
    ) -> ChatMessage:
        row = ChatMessageRow(id=message_id or ids.new_id("message"), session_id=session_id,
                             role=role,
                             content=content, references=references or [], created_at=_now())
        try:
            with self._tx() as session:
                session.add(row)
        except IntegrityError as exc:
            # The session went while its answer was written (its student or creator was
            # deleted): a lost session, not a broken database.
            with self._tx() as session:
                if session.get(ChatSessionRow, session_id) is None:
                    raise NotFoundError(f"no chat session {session_id}: it was deleted "
                                        "while the answer was written") from exc
            raise
        return _message(row)

    def chat_messages(self, session_id: str) -> list[ChatMessage]:
        with self._tx() as session:
            rows = session.scalars(
                select(ChatMessageRow).where(ChatMessageRow.session_id == session_id)
                .order_by(ChatMessageRow.created_at, ChatMessageRow.id)
            ).all()
            return [_message(r) for r in rows]

    def chat_session_ids(self, creator_id: str, course_id: str) -> list[str]:
        """Ids of the creator's chat sessions about one course (for per-course costs)."""
        with self._tx() as session:
            return list(session.scalars(
                select(ChatSessionRow.id).where(ChatSessionRow.creator_id == creator_id,
                                                ChatSessionRow.course_id == course_id)
            ).all())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a pipeline step writes; busy_timeout waits out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
