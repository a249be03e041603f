"""Chat: answers from the creator's lectures with cited moments, streamed as SSE."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import msgspec
from litestar import Controller, get, post
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chronos_api.auth import STUDENTS_OPT
from chronos_api.bodies import strict_body
from chronos_api.errors import error_body
from chronos_api.openapi import EventStreamOperation, documented
from chronos_api.schemas import (
    AnswerDoneEvent,
    AnswerOut,
    AnswerTextEvent,
    ChatIn,
    ChatSessionOut,
    ErrorOut,
    ReferenceOut,
    SessionIdParam,
)
from chronos_pipeline.lib.answering import AnswerDelta, AnswerDone, Answering, AnswerReferences
from chronos_pipeline.lib.budgets import usd_text
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.services import Services

log = logging.getLogger("chronos_api")
STUDENTS = {STUDENTS_OPT: True}
# Refused before any work: a body that is not JSON or not a valid question, an unknown
# course or session, the spending limit; 403 is a web session's question without its CSRF
# token.
ASKING = (400, 402, 403, 404, 422)


def _event(name: str, data: msgspec.Struct | list[ReferenceOut]) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=name, data=msgspec.json.encode(data).decode())


def sse_events(
    answering: Answering, asker: Principal, data: ChatIn
) -> Iterator[ServerSentEventMessage]:
    """``answer`` text deltas, ``references`` (each ``verified`` or flagged), then ``done``
    (``covered`` false for a "not covered" answer) — or ``error`` mid-stream."""
    try:
        for event in answering.stream(asker.creator_id, data.question,
                                      course_id=data.course_id, session_id=data.session_id,
                                      student_id=asker.student_id):
            if isinstance(event, AnswerDelta):
                yield _event("answer", AnswerTextEvent(event.text))
            elif isinstance(event, AnswerReferences):
                yield _event("references", [ReferenceOut.of(r) for r in event.references])
            elif isinstance(event, AnswerDone):
                yield _event("done", AnswerDoneEvent(
                    event.session_id, event.message_id, event.covered,
                    # Students never see costs.
                    usage=None if asker.is_student else event.usage,
                    cost_usd=None if asker.is_student else usd_text(event.cost_usd),
                    title=event.title, rewrite_fell_back=event.rewrite_fell_back))
    except ChronosError as exc:
        # Headers are gone once streaming starts: the failure travels as an event.
        yield _event("error", error_body(exc))
    except Exception as exc:
        # Anything else must still end the stream with an event, never silently.
        log.exception("chat stream failed")
        yield _event("error", ErrorOut("InternalError",
                                       f"the answer failed: {type(exc).__name__}"))


class ChatController(Controller):
    path = "/chat"
    tags = ["chat"]

    @post("/", status_code=200, sync_to_thread=True, opt=STUDENTS,
          before_request=strict_body(ChatIn),
          **documented(*ASKING, operation=EventStreamOperation))
    def chat(self, data: ChatIn, principal: Principal, services: Services) -> ServerSentEvent:
        """Ask a question; the answer streams as server-sent events."""
        answering = services.answering
        answering.validate(principal.creator_id, data.question, data.course_id,
                           data.session_id, principal.student_id)
        return ServerSentEvent(sse_events(answering, principal, data))

    @post("/answer", status_code=200, sync_to_thread=True, opt=STUDENTS,
          before_request=strict_body(ChatIn),
          **documented(*ASKING))
    def answer(self, data: ChatIn, principal: Principal, services: Services) -> AnswerOut:
        """Ask a question; the whole answer comes back as one JSON document."""
        result = services.answering.answer(
            principal.creator_id, data.question, course_id=data.course_id,
            session_id=data.session_id, student_id=principal.student_id)
        student = principal.is_student
        return AnswerOut(
            answer=result.answer,
            references=[ReferenceOut.of(r) for r in result.references],
            usage=None if student else result.usage,
            cost_usd=None if student else usd_text(result.cost_usd),
            session_id=result.session_id, message_id=result.message_id,
            covered=result.covered, title=result.title,
            rewrite_fell_back=result.rewrite_fell_back,
        )

    @get("/sessions", sync_to_thread=True, opt=STUDENTS, **documented())
    def list_sessions(self, principal: Principal, services: Services) -> list[ChatSessionOut]:
        """The caller's own chat sessions."""
        return [ChatSessionOut.of(s) for s in services.catalog.list_chat_sessions(
            principal.creator_id, principal.student_id)]

    @get("/sessions/{session_id:str}", sync_to_thread=True, opt=STUDENTS,
         **documented(404, 422))
    def get_session(self, session_id: SessionIdParam, principal: Principal,
                    services: Services) -> ChatSessionOut:
        """One of the caller's chat sessions with its messages and their cited moments."""
        session = services.catalog.get_chat_session(principal.creator_id, session_id,
                                                    principal.student_id)
        return ChatSessionOut.of(session, services.catalog.chat_messages(session.id))
