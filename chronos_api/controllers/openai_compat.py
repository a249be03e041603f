"""OpenAI-compatible chat: ``/v1/models`` lists courses, ``/v1/chat/completions`` answers.

Any chat UI or SDK that speaks OpenAI can talk to a course with a Chronos key; the mapping
lives in ``chronos_pipeline.lib.openai_wire``. Errors under ``/v1`` take OpenAI's shape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.response import Stream

from chronos_api.auth import STUDENTS_OPT
from chronos_api.openapi import CompletionOperation, openai_errors
from chronos_pipeline.lib import ids
from chronos_pipeline.lib.answering import Answering
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.openai_wire import (
    ChatCompletion,
    ChatCompletionRequest,
    CompletionWriter,
    ErrorResponse,
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


def _error(status: int, body: ErrorResponse, headers: dict[str, str] | None = None
           ) -> Response[ErrorResponse]:
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def openai_chronos_error(_request: Request[Any, Any, Any], exc: ChronosError
                         ) -> Response[ErrorResponse]:
    status, body = error_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _error(status, body, headers)


def openai_http_error(_request: Request[Any, Any, Any], exc: HTTPException
                      ) -> Response[ErrorResponse]:
    # Litestar's own refusals: a body that does not decode, a wrong method, and the like.
    message = str(exc.detail)
    if isinstance(exc.extra, list) and exc.extra and isinstance(exc.extra[0], dict):
        # A body that did not decode: msgspec says what and where ("... - at `$.model`").
        message = f"{message}: {exc.extra[0].get('message', '')}".rstrip(": ")
    return _error(exc.status_code, error_response(exc.status_code, message))


def openai_internal_error(request: Request[Any, Any, Any], exc: Exception
                          ) -> Response[ErrorResponse]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, error_response(500, "internal error; see the server log"))


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
    exception_handlers = {
        ChronosError: openai_chronos_error,
        HTTPException: openai_http_error,
        Exception: openai_internal_error,
    }

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
          **openai_errors(400, 402, 403, 404, 409) | {"operation_class": CompletionOperation})
    def chat_completions(self, data: ChatCompletionRequest, request: Request[Any, Any, Any],
                         principal: Principal, services: Services
                         ) -> Response[ChatCompletion] | Stream:
        """An answer from the model's course(s) in OpenAI's format, streamed when asked.
        Citations: ``[mm:ss] title`` lines in the text and ``message.citations``."""
        course = resolve_model(services.catalog, principal, data.model)
        course_id = course.id if course is not None else None
        answering = services.answering
        question = answering.validate(principal.creator_id, question_of(data), course_id, None,
                                      principal.student_id)
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
