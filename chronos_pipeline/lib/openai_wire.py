"""The OpenAI chat-completions wire format over ``Answering``: models are courses.

A *model* is what a client picks in its model menu: ``chronos-course-<course id>`` answers
from one course, ``chronos-all`` from every course the key may read (all of a creator's,
or a student's enrolled ones). ``Answering`` events become a ``chat.completion`` or a
stream of ``chat.completion.chunk`` objects:

- the message text is the answer followed by a source list, one ``[mm:ss] Lecture title``
  line per cited moment, so any chat UI shows where the answer comes from;
- the same citations travel structured in an extra field (``choices[0].message.citations``,
  or ``citations`` on the streamed chunk that carries the source list), which the official
  SDK keeps on its objects;
- ``usage`` is computed from the quantities of the ledger records the answer wrote: prompt
  tokens are every input token (query embedding, the answerer's ranking embeddings and the
  chat model's input, cache reads and writes included), completion tokens the chat model's
  output tokens. For a creator ``usage.cost_usd`` adds the cost; a student never sees it.

Errors take OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Annotated
from urllib.parse import quote

import msgspec

from chronos_pipeline.lib.access import readable_course, readable_courses
from chronos_pipeline.lib.answering import AnswerDelta, AnswerDone, AnswerEvent, AnswerReferences
from chronos_pipeline.lib.answering import Reference as AnswerReference
from chronos_pipeline.lib.catalog import Catalog, Course
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import (
    AuthenticationError,
    BudgetExceededError,
    ChronosError,
    ClientError,
    ForbiddenError,
    NotFoundError,
    TransientError,
    ValidationError,
)
from chronos_pipeline.lib.providers.base import Turn

ALL_COURSES_MODEL = "chronos-all"
COURSE_MODEL_PREFIX = "chronos-course-"
OWNER = "chronos"
PROMPT_UNITS = ("input_token", "cache_read_token", "cache_write_token")
COMPLETION_UNITS = ("output_token",)
SOURCES_HEADING = "Sources:"


# models ------------------------------------------------------------------------------------
class Model(msgspec.Struct):
    id: str
    object: str
    created: int
    owned_by: str


class ModelList(msgspec.Struct):
    object: str
    data: list[Model]


def course_model_id(course_id: str) -> str:
    return f"{COURSE_MODEL_PREFIX}{course_id}"


def _model(model_id: str, created: float) -> Model:
    return Model(id=model_id, object="model", created=int(created), owned_by=OWNER)


def list_models(catalog: Catalog, principal: Principal) -> ModelList:
    """``chronos-all`` first, then one model per course the principal may read."""
    courses = readable_courses(catalog, principal)
    first = min((c.created_at.timestamp() for c in courses), default=0.0)
    return ModelList(object="list", data=[
        _model(ALL_COURSES_MODEL, first),
        *(_model(course_model_id(c.id), c.created_at.timestamp()) for c in courses),
    ])


def resolve_model(catalog: Catalog, principal: Principal, model_id: str) -> Course | None:
    """The course a model answers from (``None``: every readable course), or 404."""
    if model_id == ALL_COURSES_MODEL:
        return None
    course_id = model_id.removeprefix(COURSE_MODEL_PREFIX)
    if course_id == model_id:
        raise NotFoundError(f"The model '{model_id}' does not exist")
    try:
        return readable_course(catalog, principal, course_id)
    except (NotFoundError, ValidationError) as exc:
        raise NotFoundError(f"The model '{model_id}' does not exist") from exc


def get_model(catalog: Catalog, principal: Principal, model_id: str) -> Model:
    course = resolve_model(catalog, principal, model_id)
    if course is None:
        return list_models(catalog, principal).data[0]
    return _model(model_id, course.created_at.timestamp())


# requests ----------------------------------------------------------------------------------
class ContentPart(msgspec.Struct):
    type: str
    text: str | None = None


class MessageIn(msgspec.Struct):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(msgspec.Struct):
    include_usage: bool = False


class ChatCompletionRequest(msgspec.Struct):
    """What clients send; fields a lecture answerer cannot honour are accepted and ignored
    (sampling settings, token limits, stop sequences, tools), and unknown ones too. A value
    OpenAI would refuse (a temperature above 2, a token limit below 1) is refused here too,
    so that a client learns of its mistake wherever it points."""

    model: str
    messages: list[MessageIn]
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    user: str | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def _text(content: str | list[ContentPart] | None) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.text or "" for p in content or [] if p.type == "text")


def history_of(request: ChatCompletionRequest) -> list[Turn]:
    """The user and assistant turns before the last user message: the conversation a
    follow-up question is read with (system and tool messages are not part of it)."""
    last = max((i for i, m in enumerate(request.messages) if m.role == "user"), default=0)
    return [Turn(m.role, _text(m.content)) for m in request.messages[:last]
            if m.role in ("user", "assistant") and _text(m.content).strip()]


def question_of(request: ChatCompletionRequest) -> str:
    """The last user message is the question; the turns before it are its history."""
    if request.n not in (None, 1):
        raise ValidationError("only n=1 is supported: there is one answer per question")
    if not request.messages:
        raise ValidationError("'messages' is empty: send at least one user message")
    for message in request.messages:
        if message.role not in ROLES:
            raise ValidationError(f"unknown message role {message.role!r}")
    users = [m for m in request.messages if m.role == "user"]
    if not users:
        raise ValidationError("'messages' has no user message to answer")
    content = users[-1].content
    if isinstance(content, str):
        return content
    if not content:
        raise ValidationError("the last user message is empty")
    others = sorted({p.type for p in content if p.type != "text"})
    if others:
        raise ValidationError(f"only text content parts are supported, not {', '.join(others)}")
    return "\n".join(p.text or "" for p in content)


# responses ---------------------------------------------------------------------------------
class Citation(msgspec.Struct):
    video_id: str
    title: str
    start_s: float
    end_s: float
    timestamp: str
    url: str
    text: str
    # False when the cited sentence does not support the answer's claim, or the time was
    # not among the excerpts (``note`` says which; ``video_id`` and ``url`` are empty then).
    verified: bool = True
    note: str = ""


class Usage(msgspec.Struct, omit_defaults=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    # Creators only: students never see money.
    cost_usd: float | None = None


class Message(msgspec.Struct):
    role: str
    content: str
    citations: list[Citation]
    refusal: str | None = None


class Choice(msgspec.Struct):
    index: int
    message: Message
    finish_reason: str
    logprobs: None = None


class ChatCompletion(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class Delta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(msgspec.Struct, omit_defaults=True):
    id: str
    object: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    citations: list[Citation] | None = None


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(msgspec.Struct):
    error: ErrorDetail


def completion_id(message_id: str) -> str:
    """The completion is the chat message: its id names the ledger records it wrote."""
    return f"chatcmpl-{message_id}"


def usage_of(quantities: dict[str, float], cost_usd: Decimal | None) -> Usage:
    prompt = round(sum(quantities.get(unit, 0.0) for unit in PROMPT_UNITS))
    completion = round(sum(quantities.get(unit, 0.0) for unit in COMPLETION_UNITS))
    return Usage(prompt, completion, prompt + completion,
                 None if cost_usd is None else float(cost_usd))


def citations_of(references: Sequence[AnswerReference], base_url: str) -> list[Citation]:
    base = base_url.rstrip("/")
    return [
        Citation(video_id=r.video_id, title=r.title, start_s=r.start_s, end_s=r.end_s,
                 timestamp=r.timestamp, text=r.text,
                 url=(f"{base}/app/lectures/{quote(r.video_id)}?t={int(r.start_s)}"
                      if r.video_id else ""),
                 verified=r.verified, note=r.note)
        for r in references
    ]


def sources_text(citations: Sequence[Citation]) -> str:
    """The source list appended to the answer: one ``[mm:ss] title`` line per moment."""
    lines = list(dict.fromkeys(
        f"[{c.timestamp}] {c.title}" + ("" if c.verified else " (unverified)").rstrip()
        for c in citations))
    if not lines:
        return ""
    return "\n\n" + SOURCES_HEADING + "\n" + "\n".join(lines) + "\n"


class CompletionWriter:
    """Turns one answer's events into OpenAI objects, streamed or whole."""

    def __init__(self, *, message_id: str, model: str, base_url: str, show_cost: bool,
                 created: int | None = None) -> None:
        self.id = completion_id(message_id)
        self.model = model
        self.base_url = base_url
        self.show_cost = show_cost
        self.created = int(time.time()) if created is None else created

    def _chunk(self, delta: Delta | None = None, finish_reason: str | None = None, *,
               usage: Usage | None = None,
               citations: list[Citation] | None = None) -> ChatCompletionChunk:
        choices = [] if delta is None else [ChunkChoice(0, delta, finish_reason)]
        return ChatCompletionChunk(self.id, "chat.completion.chunk", self.created, self.model,
                                   choices, usage, citations)

    def _usage(self, done: AnswerDone) -> Usage:
        return usage_of(done.usage, done.cost_usd if self.show_cost else None)

    def chunks(self, events: Iterable[AnswerEvent], *,
               include_usage: bool) -> Iterator[ChatCompletionChunk]:
        """Role first, the answer's text deltas, the source list (with ``citations``), the
        finish, then — when asked for — a usage chunk with no choices."""
        yield self._chunk(Delta(role="assistant", content=""))
        citations: list[Citation] = []
        for event in events:
            if isinstance(event, AnswerDelta):
                if event.text:
                    yield self._chunk(Delta(content=event.text))
            elif isinstance(event, AnswerReferences):
                citations = citations_of(event.references, self.base_url)
            elif isinstance(event, AnswerDone):
                yield self._chunk(Delta(content=sources_text(citations)), citations=citations)
                yield self._chunk(Delta(), "stop")
                if include_usage:
                    yield self._chunk(usage=self._usage(event))

    def completion(self, events: Iterable[AnswerEvent]) -> ChatCompletion:
        text: list[str] = []
        citations: list[Citation] = []
        done: AnswerDone | None = None
        for event in events:
            if isinstance(event, AnswerDelta):
                text.append(event.text)
            elif isinstance(event, AnswerReferences):
                citations = citations_of(event.references, self.base_url)
            else:
                done = event
        if done is None:
            raise RuntimeError("the answer ended without its usage")
        message = Message("assistant", "".join(text) + sources_text(citations), citations)
        return ChatCompletion(self.id, "chat.completion", self.created, self.model,
                              [Choice(0, message, "stop")], self._usage(done))


# errors ------------------------------------------------------------------------------------
def error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 402:
        return "insufficient_quota"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error" if status < 500 else "server_error"


def error_status(exc: ChronosError) -> int:
    """OpenAI's statuses: a malformed request is 400 there (ours say 422 elsewhere)."""
    if isinstance(exc, ValidationError):
        return 400
    if isinstance(exc, ClientError):
        return exc.status_code
    return 503 if isinstance(exc, TransientError) else 500


def error_code(exc: ChronosError) -> str | None:
    if isinstance(exc, AuthenticationError):
        return "invalid_api_key"
    if isinstance(exc, BudgetExceededError):
        return "budget_exceeded"
    if isinstance(exc, NotFoundError) and exc.message.startswith("The model "):
        return "model_not_found"
    if isinstance(exc, ForbiddenError):
        return "forbidden"
    return None


def error_response(status: int, message: str, *, code: str | None = None,
                   param: str | None = None) -> ErrorResponse:
    return ErrorResponse(ErrorDetail(message, error_type(status), param, code))


def error_of(exc: ChronosError) -> tuple[int, ErrorResponse]:
    status = error_status(exc)
    param = "model" if error_code(exc) == "model_not_found" else None
    return status, error_response(status, exc.message, code=error_code(exc), param=param)
