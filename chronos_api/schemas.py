"""Request and response bodies of the HTTP API, and the constrained strings they are made of.

Every limit here is the one the core enforces (the catalog's column widths, the question
limit, the money format), so the schema states exactly what a request must satisfy. Money
is a decimal string everywhere (``"0.0105"``): never a float.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar.params import Parameter

from chronos_pipeline.lib import ids
from chronos_pipeline.lib.answering import MAX_QUESTION_CHARS, Reference
from chronos_pipeline.lib.budgets import MONEY_MAX_CHARS, MONEY_PATTERN, BudgetStatus, usd_text
from chronos_pipeline.lib.catalog import ChatMessage, ChatSession, Course, StatusEvent, Video
from chronos_pipeline.lib.catalog_models import COURSE_NAME_CHARS, FILENAME_CHARS, TITLE_CHARS
from chronos_pipeline.lib.ingest import UploadState
from chronos_pipeline.lib.transcripts import Transcript

NO_NUL = r"^[^\x00]*$"


def _text(limit: int, what: str) -> Any:
    return msgspec.Meta(min_length=1, max_length=limit, pattern=NO_NUL,
                        description=f"{what}: 1 to {limit:,} characters, no NUL")


def _id(kind: str) -> Any:
    return msgspec.Meta(pattern=ids.pattern(kind), description=f"a {kind.replace('_', ' ')} id")


Title = Annotated[str, _text(TITLE_CHARS, "the lecture's title")]
CourseName = Annotated[str, _text(COURSE_NAME_CHARS, "the course's name")]
FileName = Annotated[str, _text(FILENAME_CHARS, "the uploaded file's name")]
Question = Annotated[str, _text(MAX_QUESTION_CHARS, "the question")]
CourseId = Annotated[str, _id("course")]
SessionId = Annotated[str, _id("chat_session")]
Money = Annotated[str, msgspec.Meta(
    max_length=MONEY_MAX_CHARS, pattern=MONEY_PATTERN, examples=["25", "0.015"],
    description="an amount in USD as a decimal string: at most 12 digits before the point "
                "and 6 after")]
Usd = Annotated[str, msgspec.Meta(
    examples=["0.0105"], description="an exact amount in USD as a decimal string")]

# Path and query parameters state the same limits through Litestar's Parameter.
VideoIdParam = Annotated[str, Parameter(pattern=ids.pattern("video"), description="a video id")]
SessionIdParam = Annotated[str, Parameter(pattern=ids.pattern("chat_session"),
                                          description="a chat session id")]


def text_param(limit: int, what: str) -> Any:
    """A required query parameter of 1 to ``limit`` characters without NUL."""
    return Parameter(min_length=1, max_length=limit, pattern=NO_NUL,
                     description=f"{what}: 1 to {limit:,} characters, no NUL")


def optional_text_param(limit: int, what: str) -> Any:
    return Parameter(min_length=1, max_length=limit, pattern=NO_NUL, default=None,
                     required=False, description=f"{what}: 1 to {limit:,} characters, no NUL")


def optional_id_param(kind: str) -> Any:
    return Parameter(pattern=ids.pattern(kind), default=None, required=False,
                     description=f"a {kind.replace('_', ' ')} id")


class ErrorOut(msgspec.Struct, omit_defaults=True):
    """Every error: the error's class and a message a person can act on."""

    error: str
    detail: str
    # Bytes of the upload the server holds, after an upload offset conflict or a cut body.
    offset: int | None = None


class HealthOut(msgspec.Struct):
    status: str


class CourseIn(msgspec.Struct, forbid_unknown_fields=True):
    name: CourseName


class CourseOut(msgspec.Struct):
    id: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, course: Course) -> CourseOut:
        return cls(course.id, course.name, course.created_at)


class VideoIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    course_id: CourseId | None = None
    filename: FileName | None = None


class StatusEventOut(msgspec.Struct):
    status: str
    at: datetime
    message: str | None = None

    @classmethod
    def of(cls, event: StatusEvent) -> StatusEventOut:
        return cls(event.status.value, event.at, event.message)


class VideoOut(msgspec.Struct):
    id: str
    title: str
    status: str
    course_id: str | None
    duration_s: float | None
    size_bytes: int | None
    container: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    history: list[StatusEventOut] | None = None
    # Something to know about a lecture that stays usable (a failed re-embedding).
    notice: str | None = None

    @classmethod
    def of(cls, video: Video, history: list[StatusEvent] | None = None) -> VideoOut:
        return cls(
            id=video.id, title=video.title, status=video.status.value,
            course_id=video.course_id, duration_s=video.duration_s,
            size_bytes=video.size_bytes, container=video.container,
            error_message=video.error_message, created_at=video.created_at,
            updated_at=video.updated_at,
            history=[StatusEventOut.of(e) for e in history] if history is not None else None,
            notice=video.notice,
        )


class UploadOut(msgspec.Struct):
    """An upload's progress; a client resumes at ``received_bytes``, never from zero."""

    video_id: str
    received_bytes: int
    total_bytes: int | None
    expires_at: datetime | None
    complete: bool

    @classmethod
    def of(cls, state: UploadState) -> UploadOut:
        return cls(state.video_id, state.received_bytes, state.total_bytes, state.expires_at,
                   state.complete)


class WordOut(msgspec.Struct):
    word: str
    start_s: float
    end_s: float


class SegmentOut(msgspec.Struct):
    start_s: float
    end_s: float
    text: str
    words: list[WordOut]


class TranscriptOut(msgspec.Struct):
    """The public form of a transcript (the model that made it is internal)."""

    video_id: str
    language: str
    duration_s: float
    segments: list[SegmentOut]

    @classmethod
    def of(cls, transcript: Transcript, video_id: str) -> TranscriptOut:
        return cls(video_id, transcript.language, transcript.duration_s, [
            SegmentOut(s.start_s, s.end_s, s.text,
                       [WordOut(w.word, w.start_s, w.end_s) for w in s.words])
            for s in transcript.segments
        ])


class ChatIn(msgspec.Struct, forbid_unknown_fields=True):
    question: Question
    course_id: CourseId | None = None
    session_id: SessionId | None = None


class ReferenceOut(msgspec.Struct):
    """A cited sentence. ``verified`` is false when the generative answer's ``claim`` is not
    supported by it, or cites a time the model was not given (``note`` says which; then
    ``video_id`` and ``text`` are empty)."""

    video_id: str
    title: str
    start_s: float
    end_s: float
    timestamp: str
    text: str
    score: float
    verified: bool = True
    claim: str = ""
    note: str = ""

    @classmethod
    def of(cls, reference: Reference) -> ReferenceOut:
        return cls(reference.video_id, reference.title, reference.start_s, reference.end_s,
                   reference.timestamp, reference.text, reference.score, reference.verified,
                   reference.claim, reference.note)


class AnswerOut(msgspec.Struct, omit_defaults=True):
    answer: str
    references: list[ReferenceOut]
    session_id: str
    message_id: str
    # False when nothing in the lectures answers the question (and nothing is cited).
    covered: bool = True
    # A new session's title when a generative model named it.
    title: str | None = None
    # True when the model's rewrite call for a follow-up failed and the local rewrite
    # stood in (the answer came anyway; nothing was billed for the failed call).
    rewrite_fell_back: bool = False
    # Absent for students: they never see costs.
    usage: dict[str, float] | None = None
    cost_usd: Usd | None = None


class AnswerTextEvent(msgspec.Struct):
    """The data of an ``answer`` event: the next piece of the answer's text."""

    text: str


class AnswerDoneEvent(msgspec.Struct, omit_defaults=True):
    """The data of the ``done`` event (usage and cost are absent for students)."""

    session_id: str
    message_id: str
    # False when nothing retrieved answers the question (the answer says so, cites nothing).
    covered: bool
    usage: dict[str, float] | None = None
    cost_usd: Usd | None = None
    # The session's title, on the first answer of a new session.
    title: str | None = None
    # True when the model's rewrite call for a follow-up failed and the local rewrite
    # stood in.
    rewrite_fell_back: bool = False


class ChatMessageOut(msgspec.Struct):
    id: str
    role: str
    content: str
    references: list[ReferenceOut]
    created_at: datetime

    @classmethod
    def of(cls, message: ChatMessage) -> ChatMessageOut:
        return cls(message.id, message.role, message.content,
                   msgspec.convert(message.references, list[ReferenceOut]),
                   message.created_at)


class ChatSessionOut(msgspec.Struct):
    id: str
    course_id: str | None
    created_at: datetime
    title: str | None = None
    messages: list[ChatMessageOut] | None = None

    @classmethod
    def of(cls, session: ChatSession, messages: list[ChatMessage] | None = None
           ) -> ChatSessionOut:
        return cls(session.id, session.course_id, session.created_at, session.title,
                   [ChatMessageOut.of(m) for m in messages] if messages is not None else None)


class UsageTotals(msgspec.Struct):
    unit: str
    quantity: float
    cost_usd: Usd


class UsageByStageOut(UsageTotals):
    stage: str


class UsageByProviderOut(UsageTotals):
    provider: str


class UsageByDayOut(UsageTotals):
    day: date


class MonthToDateOut(msgspec.Struct):
    month: str
    spent_usd: Usd
    projected_usd: Usd
    days_elapsed: float
    days_in_month: int


class UsageOut(msgspec.Struct):
    creator_id: str
    total_cost_usd: Usd
    month_to_date: MonthToDateOut
    by_stage: list[UsageByStageOut]
    by_provider: list[UsageByProviderOut]
    by_day: list[UsageByDayOut]


class VideoCostOut(msgspec.Struct):
    """A creator's totals for one video (``(chat)`` for questions), stage, model and unit."""

    creator_id: str
    video_id: str
    stage: str
    provider: str
    model: str
    unit: str
    quantity: float
    cost_usd: Usd
    records: int


class BudgetIn(msgspec.Struct, forbid_unknown_fields=True):
    monthly_usd: Money
    hard_limit_usd: Money | None = None


class BudgetAlertOut(msgspec.Struct):
    month: str
    threshold: int
    spent_usd: Usd
    at: datetime


class BudgetOut(msgspec.Struct):
    month: str
    spent_usd: Usd
    monthly_usd: Usd | None
    hard_limit_usd: Usd | None
    share: float | None
    alerts: list[BudgetAlertOut]
    # Held for paid steps running now (settled with their actual cost when they end).
    reserved_usd: Usd = "0"

    @classmethod
    def of(cls, status: BudgetStatus) -> BudgetOut:
        budget = status.budget
        return cls(
            month=status.month, spent_usd=usd_text(status.spent_usd),
            monthly_usd=usd_text(budget.monthly_usd) if budget else None,
            hard_limit_usd=usd_text(budget.hard_limit_usd) if budget else None,
            share=status.share,
            alerts=[BudgetAlertOut(a.month, a.threshold, usd_text(a.spent_usd), a.at)
                    for a in status.alerts],
            reserved_usd=usd_text(status.reserved_usd),
        )
