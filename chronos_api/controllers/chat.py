"""Chat: answers from the creator's lectures with cited moments, streamed as SSE."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from litestar import Controller, get, post
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chronos_api.auth import STUDENTS_OPT
from chronos_api.errors import error_body
from chronos_api.schemas import AnswerOut, ChatIn, ChatSessionOut, ReferenceOut
from chronos_pipeline.lib.answering import AnswerDelta, AnswerDone, Answering, AnswerReferences
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.services import Services


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
                yield ServerSentEventMessage(event="answer", data=json.dumps({"text": event.text}))
            elif isinstance(event, AnswerReferences):
                yield ServerSentEventMessage(
                    event="references",
                    data=json.dumps([r.to_json() for r in event.references]),
                )
            elif isinstance(event, AnswerDone):
                done: dict[str, Any] = {"session_id": event.session_id,
                                        "message_id": event.message_id,
                                        "covered": event.covered}
                if event.title:
                    done["title"] = event.title
                if not asker.is_student:  # students never see costs
                    done |= {"usage": event.usage, "cost_usd": float(event.cost_usd)}
                yield ServerSentEventMessage(event="done", data=json.dumps(done))
    except ChronosError as exc:
        # Headers are gone once streaming starts: the failure travels as an event.
        yield ServerSentEventMessage(event="error", data=json.dumps(error_body(exc)))
    except Exception as exc:
        # Anything else must still end the stream with an event, never silently.
        log.exception("chat stream failed")
        yield ServerSentEventMessage(event="error", data=json.dumps(
            {"error": "InternalError", "detail": f"the answer failed: {type(exc).__name__}"}))


log = logging.getLogger("chronos_api")
STUDENTS = {STUDENTS_OPT: True}


class ChatController(Controller):
    path = "/chat"
    tags = ["chat"]

    @post("/", status_code=200, sync_to_thread=True, opt=STUDENTS)
    def chat(self, data: ChatIn, principal: Principal, services: Services) -> ServerSentEvent:
        """Ask a question; the answer streams as server-sent events."""
        answering = services.answering
        answering.validate(principal.creator_id, data.question, data.course_id,
                           data.session_id, principal.student_id)
        return ServerSentEvent(sse_events(answering, principal, data))

    @post("/answer", status_code=200, sync_to_thread=True, opt=STUDENTS)
    def answer(self, data: ChatIn, principal: Principal, services: Services) -> AnswerOut:
        """Ask a question; the whole answer comes back as one JSON document."""
        result = services.answering.answer(
            principal.creator_id, data.question, course_id=data.course_id,
            session_id=data.session_id, student_id=principal.student_id)
        student = principal.is_student
        return AnswerOut(
            answer=result.answer,
            references=[ReferenceOut(**r.to_json()) for r in result.references],
            usage=None if student else result.usage,
            cost_usd=None if student else float(result.cost_usd),
            session_id=result.session_id, message_id=result.message_id,
            covered=result.covered, title=result.title,
        )

    @get("/sessions", sync_to_thread=True, opt=STUDENTS)
    def list_sessions(self, principal: Principal, services: Services) -> list[ChatSessionOut]:
        return [ChatSessionOut.of(s) for s in services.catalog.list_chat_sessions(
            principal.creator_id, principal.student_id)]

    @get("/sessions/{session_id:str}", sync_to_thread=True, opt=STUDENTS)
    def get_session(self, session_id: str, principal: Principal,
                    services: Services) -> ChatSessionOut:
        session = services.catalog.get_chat_session(principal.creator_id, session_id,
                                                    principal.student_id)
        return ChatSessionOut.of(session, services.catalog.chat_messages(session.id))
