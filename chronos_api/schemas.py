"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from chronos_pipeline.lib.catalog import ChatMessage, ChatSession, Course, StatusEvent, Video
from chronos_pipeline.lib.ingest import UploadState


class CourseIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class CourseOut(msgspec.Struct):
    id: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, course: Course) -> CourseOut:
        return cls(course.id, course.name, course.created_at)


class VideoIn(msgspec.Struct, forbid_unknown_fields=True):
    title: str
    course_id: str | None = None
    filename: str | None = None


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

    @classmethod
    def of(cls, video: Video, history: list[StatusEvent] | None = None) -> VideoOut:
        return cls(
            id=video.id, title=video.title, status=video.status.value,
            course_id=video.course_id, duration_s=video.duration_s,
            size_bytes=video.size_bytes, container=video.container,
            error_message=video.error_message, created_at=video.created_at,
            updated_at=video.updated_at,
            history=[StatusEventOut.of(e) for e in history] if history is not None else None,
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


class ChatIn(msgspec.Struct, forbid_unknown_fields=True):
    question: str
    course_id: str | None = None
    session_id: str | None = None


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


class AnswerOut(msgspec.Struct, omit_defaults=True):
    answer: str
    references: list[ReferenceOut]
    session_id: str
    message_id: str
    # False when nothing in the lectures answers the question (and nothing is cited).
    covered: bool = True
    # A new session's title when a generative model named it.
    title: str | None = None
    # Absent for students: they never see costs.
    usage: dict[str, float] | None = None
    cost_usd: float | None = None


class ChatMessageOut(msgspec.Struct):
    id: str
    role: str
    content: str
    references: list[dict[str, Any]]
    created_at: datetime

    @classmethod
    def of(cls, message: ChatMessage) -> ChatMessageOut:
        return cls(message.id, message.role, message.content, message.references,
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


class ErrorOut(msgspec.Struct):
    error: str
    detail: str
