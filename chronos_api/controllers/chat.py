"""Chat: answers from the creator's lectures with cited moments, streamed as SSE."""

from __future__ import annotations

import json
from collections.abc import Iterator

from litestar import Controller, get, post
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chronos_api.errors import error_body
from chronos_api.schemas import AnswerOut, ChatIn, ChatSessionOut, ReferenceOut
from chronos_pipeline.lib.answering import AnswerDelta, AnswerDone, Answering, AnswerReferences
from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.services import Services


def sse_events(
    answering: Answering, creator_id: str, data: ChatIn
) -> Iterator[ServerSentEventMessage]:
    """``answer`` text deltas, ``references``, then ``done`` — or ``error`` mid-stream."""
    try:
        for event in answering.stream(creator_id, data.question, course_id=data.course_id,
                                      session_id=data.session_id):
            if isinstance(event, AnswerDelta):
                yield ServerSentEventMessage(event="answer", data=json.dumps({"text": event.text}))
            elif isinstance(event, AnswerReferences):
                yield ServerSentEventMessage(
                    event="references",
                    data=json.dumps([r.to_json() for r in event.references]),
                )
            elif isinstance(event, AnswerDone):
                yield ServerSentEventMessage(event="done", data=json.dumps({
                    "session_id": event.session_id, "message_id": event.message_id,
                    "usage": event.usage, "cost_usd": float(event.cost_usd),
                }))
    except ChronosError as exc:
        # Headers are gone once streaming starts: the failure travels as an event.
        yield ServerSentEventMessage(event="error", data=json.dumps(error_body(exc)))


class ChatController(Controller):
    path = "/chat"
    tags = ["chat"]

    @post("/", status_code=200, sync_to_thread=True)
    def chat(self, data: ChatIn, creator: Creator, services: Services) -> ServerSentEvent:
        """Ask a question; the answer streams as server-sent events."""
        answering = services.answering
        answering.validate(creator.id, data.question, data.course_id, data.session_id)
        return ServerSentEvent(sse_events(answering, creator.id, data))

    @post("/answer", status_code=200, sync_to_thread=True)
    def answer(self, data: ChatIn, creator: Creator, services: Services) -> AnswerOut:
        """Ask a question; the whole answer comes back as one JSON document."""
        result = services.answering.answer(creator.id, data.question,
                                           course_id=data.course_id, session_id=data.session_id)
        return AnswerOut(
            answer=result.answer,
            references=[ReferenceOut(**r.to_json()) for r in result.references],
            usage=result.usage, cost_usd=float(result.cost_usd),
            session_id=result.session_id, message_id=result.message_id,
        )

    @get("/sessions", sync_to_thread=True)
    def list_sessions(self, creator: Creator, services: Services) -> list[ChatSessionOut]:
        return [ChatSessionOut.of(s) for s in services.catalog.list_chat_sessions(creator.id)]

    @get("/sessions/{session_id:str}", sync_to_thread=True)
    def get_session(self, session_id: str, creator: Creator,
                    services: Services) -> ChatSessionOut:
        session = services.catalog.get_chat_session(creator.id, session_id)
        return ChatSessionOut.of(session, services.catalog.chat_messages(session.id))
