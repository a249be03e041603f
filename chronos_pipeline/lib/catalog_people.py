"""Who may ask: students, the invitations that make them, enrolments, and sign-in sessions.

A creator owns courses; a student belongs to one creator and reaches only the courses
they are enrolled in. Both sign in with a key (shown once, stored as a SHA-256) or hold a
server-side web session whose cookie token is likewise stored hashed. Mixed into
``Catalog`` so the session handling stays in one place.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update

from chronos_pipeline.lib import ids
from chronos_pipeline.lib.catalog_models import (
    DISPLAY_NAME_CHARS,
    ChatMessageRow,
    ChatSessionRow,
    CourseRow,
    CreatorRow,
    EnrolmentRow,
    InvitationRow,
    StudentRow,
    WebSessionRow,
)
from chronos_pipeline.lib.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)

CREATOR_KEY_PREFIX = "chr_"
STUDENT_KEY_PREFIX = "chs_"


def hash_api_key(api_key: str) -> str:
    # Keys and tokens are 256 random bits, so a plain SHA-256 is enough (no stretching).
    return hashlib.sha256(api_key.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back naive; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Principal:
    """Who is asking: a creator, or one of a creator's students (``student_id`` set)."""

    creator_id: str
    name: str
    student_id: str | None = None
    # Set when the request came with a web session cookie (state changes need CSRF).
    csrf_token: str | None = None

    @property
    def is_student(self) -> bool:
        return self.student_id is not None


@dataclass(frozen=True)
class Student:
    id: str
    creator_id: str
    display_name: str
    api_key_prefix: str
    monthly_cap_usd: Decimal | None
    created_at: datetime
    course_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Invitation:
    id: str
    creator_id: str
    course_id: str
    max_uses: int
    uses: int
    expires_at: datetime
    revoked_at: datetime | None
    created_at: datetime

    def usable(self, now: datetime | None = None) -> bool:
        now = now or _now()
        return self.revoked_at is None and self.expires_at > now and self.uses < self.max_uses


def _student(row: StudentRow, course_ids: tuple[str, ...] = ()) -> Student:
    cap = Decimal(row.monthly_cap_usd) if row.monthly_cap_usd is not None else None
    return Student(row.id, row.creator_id, row.display_name, row.api_key_prefix, cap,
                   _aware(row.created_at), course_ids)


def _invitation(row: InvitationRow) -> Invitation:
    return Invitation(row.id, row.creator_id, row.course_id, row.max_uses, row.uses,
                      _aware(row.expires_at),
                      _aware(row.revoked_at) if row.revoked_at else None,
                      _aware(row.created_at))


def clean_name(value: str, what: str, limit: int = DISPLAY_NAME_CHARS) -> str:
    """``value`` stripped, if it is not empty, holds no NUL and fits ``limit`` characters."""
    value = (value or "").strip()
    if not value:
        raise ValidationError(f"{what} is empty")
    if "\x00" in value:
        raise ValidationError(f"{what} contains a NUL character")
    if len(value) > limit:
        raise ValidationError(f"{what} is over {limit} characters")
    return value


class PeopleMixin:
    _tx: Any

    # keys -----------------------------------------------------------------------------
    def authenticate_key(self, api_key: str | None) -> Principal:
        """The creator or student whose API key this is, or AuthenticationError."""
        if not api_key:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
        digest = hash_api_key(api_key)
        with self._tx() as session:
            if api_key.startswith(STUDENT_KEY_PREFIX):
                student = session.scalars(
                    select(StudentRow).where(StudentRow.api_key_hash == digest)).one_or_none()
                if student is not None:
                    return Principal(student.creator_id, student.display_name, student.id)
            else:
                creator = session.scalars(
                    select(CreatorRow).where(CreatorRow.api_key_hash == digest)).one_or_none()
                if creator is not None:
                    return Principal(creator.id, creator.name)
        raise AuthenticationError("invalid API key")

    # students -------------------------------------------------------------------------
    def create_student(self, creator_id: str, display_name: str,
                       course_ids: tuple[str, ...] = ()) -> tuple[Student, str]:
        """A student of ``creator_id`` enrolled in ``course_ids``, and their key (shown once)."""
        name = clean_name(display_name, "the display name")
        api_key = STUDENT_KEY_PREFIX + secrets.token_urlsafe(32)
        now = _now()
        row = StudentRow(id=ids.new_id("student"), creator_id=creator_id, display_name=name,
                         api_key_hash=hash_api_key(api_key), api_key_prefix=api_key[:12],
                         created_at=now)
        with self._tx() as session:
            session.add(row)
            session.flush()
            for course_id in course_ids:
                self._require_course(session, creator_id, course_id)
                session.add(EnrolmentRow(student_id=row.id, course_id=course_id,
                                         created_at=now))
        return _student(row, tuple(course_ids)), api_key

    def get_student(self, creator_id: str, student_id: str) -> Student:
        ids.require(student_id, "student")
        with self._tx() as session:
            row = session.get(StudentRow, student_id)
            if row is None or row.creator_id != creator_id:
                raise NotFoundError(f"no student {student_id}")
            return _student(row, self._courses_of(session, student_id))

    def list_students(self, creator_id: str, course_id: str | None = None) -> list[Student]:
        with self._tx() as session:
            query = select(StudentRow).where(StudentRow.creator_id == creator_id)
            if course_id is not None:
                query = query.join(EnrolmentRow, EnrolmentRow.student_id == StudentRow.id
                                   ).where(EnrolmentRow.course_id == course_id)
            rows = session.scalars(query.order_by(StudentRow.created_at)).all()
            return [_student(r, self._courses_of(session, r.id)) for r in rows]

    def student_names(self, creator_id: str, student_ids: list[str]) -> dict[str, str]:
        if not student_ids:
            return {}
        with self._tx() as session:
            rows = session.execute(select(StudentRow.id, StudentRow.display_name).where(
                StudentRow.creator_id == creator_id, StudentRow.id.in_(student_ids))).all()
            return {sid: name for sid, name in rows}

    def enrolled_course_ids(self, student_id: str) -> list[str]:
        with self._tx() as session:
            return list(self._courses_of(session, student_id))

    def enrol(self, creator_id: str, student_id: str, course_id: str) -> None:
        self.get_student(creator_id, student_id)
        with self._tx() as session:
            self._require_course(session, creator_id, course_id)
            if session.get(EnrolmentRow, (student_id, course_id)) is None:
                session.add(EnrolmentRow(student_id=student_id, course_id=course_id,
                                         created_at=_now()))

    def set_student_cap(self, creator_id: str, student_id: str,
                        monthly_cap_usd: Decimal | None) -> Student:
        """Cap what a student's questions may cost per month (None: no cap)."""
        if monthly_cap_usd is not None and monthly_cap_usd < 0:
            raise ValidationError("a student's monthly cap cannot be negative")
        self.get_student(creator_id, student_id)
        with self._tx() as session:
            row = session.get(StudentRow, student_id)
            assert row is not None
            row.monthly_cap_usd = str(monthly_cap_usd) if monthly_cap_usd is not None else None
        return self.get_student(creator_id, student_id)

    def delete_student(self, creator_id: str, student_id: str) -> None:
        """The student, their enrolments, sessions and chats go; cost records stay."""
        self.get_student(creator_id, student_id)
        with self._tx() as session:
            chat_ids = select(ChatSessionRow.id).where(ChatSessionRow.student_id == student_id)
            session.execute(delete(ChatMessageRow).where(ChatMessageRow.session_id.in_(chat_ids)))
            session.execute(delete(ChatSessionRow).where(ChatSessionRow.student_id == student_id))
            session.execute(delete(WebSessionRow).where(WebSessionRow.student_id == student_id))
            session.execute(delete(EnrolmentRow).where(EnrolmentRow.student_id == student_id))
            session.execute(delete(StudentRow).where(StudentRow.id == student_id))

    # invitations ----------------------------------------------------------------------
    def create_invitation(self, creator_id: str, course_id: str, *, max_uses: int = 30,
                          ttl: timedelta = timedelta(days=14)) -> tuple[Invitation, str]:
        """An invitation link's token (shown once) for ``max_uses`` students until expiry."""
        if not 1 <= max_uses <= 10_000:
            raise ValidationError("an invitation is usable by 1 to 10,000 people")
        if not timedelta(minutes=1) <= ttl <= timedelta(days=365):
            raise ValidationError("an invitation expires within 1 minute to 365 days")
        token = secrets.token_urlsafe(24)
        now = _now()
        row = InvitationRow(id=ids.new_id("invitation"), creator_id=creator_id,
                            course_id=course_id, token_hash=hash_api_key(token),
                            max_uses=max_uses, uses=0, expires_at=now + ttl, created_at=now)
        with self._tx() as session:
            self._require_course(session, creator_id, course_id)
            session.add(row)
        return _invitation(row), token

    def list_invitations(self, creator_id: str, course_id: str | None = None
                         ) -> list[Invitation]:
        with self._tx() as session:
            query = select(InvitationRow).where(InvitationRow.creator_id == creator_id)
            if course_id is not None:
                query = query.where(InvitationRow.course_id == course_id)
            rows = session.scalars(query.order_by(InvitationRow.created_at)).all()
            return [_invitation(r) for r in rows]

    def revoke_invitation(self, creator_id: str, invitation_id: str) -> Invitation:
        ids.require(invitation_id, "invitation")
        with self._tx() as session:
            row = session.get(InvitationRow, invitation_id)
            if row is None or row.creator_id != creator_id:
                raise NotFoundError(f"no invitation {invitation_id}")
            if row.revoked_at is None:
                row.revoked_at = _now()
            return _invitation(row)

    def open_invitation(self, token: str) -> tuple[Invitation, str]:
        """A usable invitation and its course's name, or a clear refusal."""
        with self._tx() as session:
            row = session.scalars(select(InvitationRow).where(
                InvitationRow.token_hash == hash_api_key(token or ""))).one_or_none()
            if row is None:
                raise NotFoundError("this invitation link is not valid")
            invitation = _invitation(row)
            course = session.get(CourseRow, row.course_id)
            course_name = course.name if course is not None else ""
        self._require_usable(invitation)
        return invitation, course_name

    def redeem_invitation(self, token: str, display_name: str) -> tuple[Student, str]:
        """Spend one use of the invitation on a new student enrolled in its course."""
        name = clean_name(display_name, "the display name")
        invitation, _course = self.open_invitation(token)
        with self._tx() as session:
            # One conditional UPDATE: two people redeeming the last use cannot both win.
            taken = session.execute(
                update(InvitationRow)
                .where(InvitationRow.id == invitation.id, InvitationRow.revoked_at.is_(None),
                       InvitationRow.uses < InvitationRow.max_uses,
                       InvitationRow.expires_at > _now())
                .values(uses=InvitationRow.uses + 1)
            )
            if taken.rowcount != 1:
                raise ConflictError("this invitation has just been used up or revoked")
        return self.create_student(invitation.creator_id, name, (invitation.course_id,))

    @staticmethod
    def _require_usable(invitation: Invitation) -> None:
        now = _now()
        if invitation.revoked_at is not None:
            raise ConflictError("this invitation was revoked; ask the course's creator "
                                "for a new link")
        if invitation.expires_at <= now:
            raise ConflictError("this invitation has expired; ask the course's creator "
                                "for a new link")
        if invitation.uses >= invitation.max_uses:
            raise ConflictError("this invitation has been used by as many people as it "
                                "allows; ask the course's creator for a new link")

    # web sessions ---------------------------------------------------------------------
    def create_web_session(self, principal: Principal,
                           ttl: timedelta = timedelta(days=7)) -> tuple[str, str]:
        """A sign-in session: returns the cookie token and the session's CSRF token."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = _now()
        with self._tx() as session:
            session.add(WebSessionRow(id=hash_api_key(token), creator_id=principal.creator_id,
                                      student_id=principal.student_id, csrf_token=csrf,
                                      created_at=now, expires_at=now + ttl))
        return token, csrf

    def web_session(self, token: str | None) -> Principal | None:
        """The principal behind a session cookie, or None (unknown or expired)."""
        if not token:
            return None
        with self._tx() as session:
            row = session.get(WebSessionRow, hash_api_key(token))
            if row is None or _aware(row.expires_at) <= _now():
                return None
            if row.student_id is not None:
                student = session.get(StudentRow, row.student_id)
                if student is None:
                    return None
                return Principal(row.creator_id, student.display_name, student.id,
                                 row.csrf_token)
            creator = session.get(CreatorRow, row.creator_id)
            if creator is None:
                return None
            return Principal(creator.id, creator.name, None, row.csrf_token)

    def end_web_session(self, token: str | None) -> None:
        if token:
            with self._tx() as session:
                session.execute(delete(WebSessionRow).where(
                    WebSessionRow.id == hash_api_key(token)))

    def purge_web_sessions(self, now: datetime | None = None) -> int:
        with self._tx() as session:
            result = session.execute(delete(WebSessionRow).where(
                WebSessionRow.expires_at < (now or _now())))
            return int(result.rowcount or 0)

    # helpers ------------------------------------------------------------------------------
    @staticmethod
    def _courses_of(session: Any, student_id: str) -> tuple[str, ...]:
        return tuple(session.scalars(select(EnrolmentRow.course_id).where(
            EnrolmentRow.student_id == student_id).order_by(EnrolmentRow.created_at)).all())

    @staticmethod
    def _require_course(session: Any, creator_id: str, course_id: str) -> None:
        ids.require(course_id, "course")
        row = session.get(CourseRow, course_id)
        if row is None or row.creator_id != creator_id:
            raise NotFoundError(f"unknown course {course_id}")

    def count_students(self, creator_id: str) -> int:
        with self._tx() as session:
            return int(session.scalar(select(func.count()).select_from(StudentRow).where(
                StudentRow.creator_id == creator_id)) or 0)
