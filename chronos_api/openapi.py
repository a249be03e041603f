"""What the OpenAPI document states beyond the handlers' own types.

``documented(...)`` gives a handler the ``ErrorOut`` responses it can really answer with,
and its operation class. ``ApiOperation`` drops the generic 400 Litestar adds to every route
with inputs (a request that fails the schema is our 422; only a JSON body that does not
parse is a 400). Its subclasses describe what a return type cannot: raw-body uploads, the
chat's server-sent events, byte-range media, and transcript files in several formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from chronos_api.schemas import AnswerDoneEvent, AnswerTextEvent, ErrorOut

ERROR_DESCRIPTIONS = {
    400: "The body is not JSON.",
    401: "No API key, an unknown one, or an expired web session.",
    402: "The creator's hard monthly spending limit (or the student's allowance) is reached.",
    403: "A student key used on a creator's route, or a web-session state change without "
         "its CSRF token.",
    404: "No such resource for this caller (another creator's is not found either).",
    409: "The request does not fit the resource's current state.",
    413: "The upload is over the size cap.",
    415: "The upload is not a readable video with sound.",
    416: "The byte range starts past the end of the file (`Content-Range: bytes */SIZE`).",
    422: "The request is invalid: a body of the wrong shape, a missing or unknown field, a value "
         "out of its bounds or with a NUL character, or an id of the wrong form.",
    503: "The catalog database was busy; retry after `Retry-After` seconds.",
}
# Every route behind authentication can refuse the key, or find the database busy.
AUTHENTICATED = (401, 503)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """``ErrorOut`` responses for ``statuses`` and for every authenticated route's own."""
    return {
        status: ResponseSpec(ErrorOut, description=ERROR_DESCRIPTIONS[status],
                             generate_examples=False)
        for status in sorted({*statuses, *AUTHENTICATED})
    }


@dataclass
class ApiOperation(Operation):
    """An operation of the JSON API: without Litestar's generic 400 unless the route said
    it answers 400 (a JSON body that does not parse)."""

    def __post_init__(self) -> None:
        ours = self.responses.get("400") if self.responses else None
        if self.responses and isinstance(ours, OpenAPIResponse) \
                and ours.description != ERROR_DESCRIPTIONS[400]:
            del self.responses["400"]


@dataclass
class PublicOperation(ApiOperation):
    """A route anyone may call: no security requirement (not the document's default)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.security = []


def documented(*statuses: int, operation: type[ApiOperation] = ApiOperation,
               others: dict[int, ResponseSpec] | None = None) -> dict[str, Any]:
    """Handler keywords: the error statuses the route answers with (401 and 503 come with
    every authenticated route), any other responses, and the operation class."""
    return {"responses": errors(*statuses) | (others or {}), "operation_class": operation}


def no_content(description: str) -> ResponseSpec:
    """A success without a body (the answer is in the headers)."""
    return ResponseSpec(None, description=description, generate_examples=False)


def _binary(*media_types: str) -> dict[str, OpenAPIMediaType]:
    return {media_type: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING,
                                                       format=OpenAPIFormat.BINARY))
            for media_type in media_types}


@dataclass
class RawUploadOperation(ApiOperation):
    """The request body is the video's bytes, streamed as they arrive."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.request_body = RequestBody(
            content=_binary("application/octet-stream", "video/*"),
            description="The video file's bytes (or the range `Content-Range` names).",
            required=True,
        )


CHAT_EVENTS = """Server-sent events, in this order:

- `answer` (repeated): `{"text": "..."}`, the next piece of the answer;
- `references`: a list of cited moments `{video_id, title, start_s, end_s, timestamp, text,
  score}`;
- `done`: `{session_id, message_id, usage, cost_usd}` (`usage` and `cost_usd`, a decimal
  string, are absent for students);
- `error` instead, if something fails after the stream started: `{"error", "detail"}`.

Each event's `data` is one JSON document. A request refused before the stream starts gets a
JSON error with its status instead."""


def _flat_struct_schema(struct: type[msgspec.Struct]) -> Schema:
    """The JSON Schema msgspec gives a Struct whose fields are all plain values."""
    (definition,) = msgspec.json.schema(struct)["$defs"].values()
    # Litestar writes a plain mapping into the document as it is.
    return cast(Schema, definition)


def _event(name: str, data: Schema | Reference) -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT, required=["event", "data"],
        properties={
            "event": Schema(type=OpenAPIType.STRING, const=name),
            "data": Schema(type=OpenAPIType.STRING, content_media_type="application/json",
                           content_schema=data),
        },
    )


@dataclass
class EventStreamOperation(ApiOperation):
    """The chat's answer streams as ``text/event-stream``; ``schema`` describes one event
    (as ``itemSchema`` does from OpenAPI 3.2 on)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        assert self.responses is not None
        event = Schema(description=CHAT_EVENTS, one_of=[
            _event("answer", _flat_struct_schema(AnswerTextEvent)),
            _event("references", Schema(type=OpenAPIType.ARRAY, items=Reference(
                "#/components/schemas/ReferenceOut"))),
            _event("done", _flat_struct_schema(AnswerDoneEvent)),
            _event("error", Reference("#/components/schemas/ErrorOut")),
        ])
        self.responses["200"] = OpenAPIResponse(
            description=CHAT_EVENTS,
            content={"text/event-stream": OpenAPIMediaType(schema=event)},
        )


MEDIA_TYPES = ("video/*", "application/octet-stream")


@dataclass
class MediaOperation(ApiOperation):
    """The video file, whole (200) or the byte range asked for (206)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        assert self.responses is not None
        self.responses["200"] = OpenAPIResponse(
            description="The whole file (no `Range`, or several ranges).",
            content=_binary(*MEDIA_TYPES))
        self.responses["206"] = OpenAPIResponse(
            description="The byte range asked for, with `Content-Range`.",
            content=_binary(*MEDIA_TYPES))


TRANSCRIPT_TYPES = ("application/x-subrip", "text/vtt", "text/plain", "application/json")


@dataclass
class TranscriptFileOperation(ApiOperation):
    """A transcript file: captions (srt, vtt), timestamped text (txt) or JSON."""

    def __post_init__(self) -> None:
        super().__post_init__()
        assert self.responses is not None
        json_schema: Schema | Reference = Reference("#/components/schemas/TranscriptOut")
        content = {media_type: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                   for media_type in TRANSCRIPT_TYPES[:-1]}
        content["application/json"] = OpenAPIMediaType(schema=json_schema)
        self.responses["200"] = OpenAPIResponse(
            description="The transcript in the format asked for.", content=content)


OPENAI_ERROR_DESCRIPTIONS = {
    400: "A malformed request (OpenAI's `invalid_request_error`; elsewhere our 422).",
    401: "No API key or an unknown one (`invalid_api_key`).",
    402: "The creator's hard monthly spending limit (or the student's allowance) is reached.",
    403: "A web-session request without its CSRF token.",
    404: "No such model for this key (`model_not_found`).",
    409: "The request does not fit the current state.",
    503: "The catalog database was busy; retry after `Retry-After` seconds.",
}


def openai_errors(*statuses: int) -> dict[str, Any]:
    """Handler keywords for ``/v1``: errors in OpenAI's shape, ``{"error": {...}}``."""
    from chronos_pipeline.lib.openai_wire import ErrorResponse

    return {
        "responses": {
            status: ResponseSpec(ErrorResponse, description=OPENAI_ERROR_DESCRIPTIONS[status],
                                 generate_examples=False)
            for status in sorted({*statuses, 401, 503})
        },
        "operation_class": OpenAIOperation,
    }


@dataclass
class OpenAIOperation(Operation):
    """An operation under ``/v1``: its 400 is OpenAI's error object, not Litestar's."""

    def __post_init__(self) -> None:
        ours = self.responses.get("400") if self.responses else None
        if self.responses and isinstance(ours, OpenAPIResponse) \
                and ours.description != OPENAI_ERROR_DESCRIPTIONS[400]:
            del self.responses["400"]


COMPLETION_CHUNKS = """With `"stream": true`: server-sent events without names, each `data:`
line one `chat.completion.chunk` (role first, then content deltas, the citations, the finish
reason, a usage chunk when `stream_options.include_usage`), then `data: [DONE]`. Without it,
one `chat.completion` JSON document."""


@dataclass
class CompletionOperation(OpenAIOperation):
    """``/v1/chat/completions`` answers JSON, or ``text/event-stream`` when streamed."""

    def __post_init__(self) -> None:
        super().__post_init__()
        assert self.responses is not None
        self.responses["200"] = OpenAPIResponse(
            description=COMPLETION_CHUNKS,
            content={
                "application/json": OpenAPIMediaType(
                    schema=Reference("#/components/schemas/ChatCompletion")),
                "text/event-stream": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            },
        )
