"""OpenAI-compatible chat: ``/v1/models`` lists courses, ``/v1/chat/completions`` answers.

Any chat UI or SDK that speaks OpenAI can talk to a course with a Chronos key; the mapping
lives in ``chronos_pipeline.lib.openai_wire``. Errors under ``/v1`` take OpenAI's shape
(``chronos_api.errors`` maps them by path, so a path ``/v1`` lacks answers the same way).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Stream

from chronos_api.auth import STUDENTS_OPT
from chronos_api.bodies import strict_body
from chronos_api.openapi import CompletionOperation, openai_errors
from chronos_pipeline.lib import ids
from chronos_pipeline.lib.answering import Answering
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.openai_wire import (
    ChatCompletion,
    ChatCompletionRequest,
    CompletionWriter,
    Model,
    ModelList,
    error_of,
    error_response,
    get_model,
    history_of,
    list_models,
    question_of,
    resolve_model,
)
from chronos_pipeline.lib.providers.base import Turn
from chronos_pipeline.lib.services import Services

log = logging.getLogger("chronos_api")
STUDENTS = {STUDENTS_OPT: True}
DONE = b"data: [DONE]\n\n"


def _sse(item: msgspec.Struct) -> bytes:
    return b"data: " + msgspec.json.encode(item) + b"\n\n"


def sse_body(writer: CompletionWriter, answering: Answering, principal: Principal,
             question: str, course_id: str | None, include_usage: bool,
             history: list[Turn]) -> Iterator[bytes]:
    """``data:`` lines of chunks, then ``data: [DONE]`` — or an OpenAI error object when
    something fails after the headers went (the SDK raises it as an ``APIError``)."""
    events = answering.stream(principal.creator_id, question, course_id=course_id,
                              student_id=principal.student_id,
                              message_id=writer.id.removeprefix("chatcmpl-"), history=history)
    try:
        for chunk in writer.chunks(events, include_usage=include_usage):
            yield _sse(chunk)
    except ChronosError as exc:
        yield _sse(error_of(exc)[1])
        return
    except Exception as exc:
        log.exception("OpenAI-compatible stream failed")
        yield _sse(error_response(500, f"the answer failed: {type(exc).__name__}"))
        return
    yield DONE


class OpenAIController(Controller):
    path = "/v1"
    tags = ["openai"]

    @get("/models", sync_to_thread=True, opt=STUDENTS, **openai_errors(403))
    def models(self, principal: Principal, services: Services) -> ModelList:
        """Models are courses: ``chronos-all`` and one ``chronos-course-<id>`` per course
        this key may read (a student's enrolled courses only)."""
        return list_models(services.catalog, principal)

    @get("/models/{model_id:str}", sync_to_thread=True, opt=STUDENTS,
         **openai_errors(400, 403, 404))
    def model(self, model_id: str, principal: Principal, services: Services) -> Model:
        return get_model(services.catalog, principal, model_id)

    @post("/chat/completions", status_code=200, sync_to_thread=True, opt=STUDENTS,
          before_request=strict_body(ChatCompletionRequest),
          **openai_errors(400, 402, 403, 404, 409) | {"operation_class": CompletionOperation})
    def chat_completions(self, data: ChatCompletionRequest, request: Request[Any, Any, Any],
                         principal: Principal, services: Services
                         ) -> Response[ChatCompletion] | Stream:
        """An answer from the model's course(s) in OpenAI's format, streamed when asked.
        Citations: ``[mm:ss] title`` lines in the text and ``message.citations``."""
        course = resolve_model(services.catalog, principal, data.model)
        course_id = course.id if course is not None else None
        answering = services.answering
        question, course_id = answering.validate(principal.creator_id, question_of(data),
                                                 course_id, None, principal.student_id)
        writer = CompletionWriter(message_id=ids.new_id("message"), model=data.model,
                                  base_url=str(request.base_url),
                                  show_cost=not principal.is_student)
        if data.stream:
            return Stream(sse_body(writer, answering, principal, question, course_id,
                                   data.include_usage, history_of(data)),
                          media_type="text/event-stream",
                          headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        events = answering.stream(principal.creator_id, question, course_id=course_id,
                                  student_id=principal.student_id,
                                  message_id=writer.id.removeprefix("chatcmpl-"),
                                  history=history_of(data))
        return Response(writer.completion(events))
