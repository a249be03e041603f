"""The one mapping from Chronos errors to HTTP responses.

Three shapes, chosen by path: ``/v1/...`` answers in OpenAI's error shape (so an OpenAI SDK
raises the right exception, also for a path or method ``/v1`` does not have), the web app's
pages answer with an HTML page, and everything else with ``ErrorOut``.
"""

from __future__ import annotations

import logging

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.exceptions import ValidationException as RequestValidationFailed
from litestar.response import Redirect, Template

from chronos_api.schemas import ErrorOut
from chronos_pipeline.lib.errors import (
    ChronosError,
    ClientError,
    ResumeAt,
    TerminalError,
    TransientError,
    ValidationError,
)
from chronos_pipeline.lib.openai_wire import ErrorResponse, error_of, error_response

log = logging.getLogger("chronos_api")
OPENAI_PREFIX = "/v1/"


def error_body(exc: BaseException) -> ErrorOut:
    message = exc.message if isinstance(exc, ChronosError) else str(exc)
    return ErrorOut(type(exc).__name__, message,
                    exc.offset if isinstance(exc, ResumeAt) else None)


def _problems(exc: RequestValidationFailed) -> list[dict[str, object]]:
    return [p for p in exc.extra if isinstance(p, dict)] if isinstance(exc.extra, list) else []


def _request_problems(exc: RequestValidationFailed) -> str:
    """Litestar's own request validation, said as one message: which input, what is wrong."""
    said = [" ".join(str(part) for part in (getattr(p.get("source"), "value", p.get("source")),
                                            p.get("key")) if part) + f": {p.get('message', '')}"
            for p in _problems(exc)]
    return "; ".join([str(exc.detail), *said]) if said else str(exc.detail)


def http_error_body(exc: HTTPException) -> tuple[int, ErrorOut]:
    """A framework error as ours. A request that fails the schema (a malformed body, a
    value out of its bounds) is a 422 ValidationError, as when the core finds it."""
    if isinstance(exc, RequestValidationFailed):
        return 422, ErrorOut(ValidationError.__name__, _request_problems(exc))
    return exc.status_code, ErrorOut(type(exc).__name__, str(exc.detail))


def wants_page(request: Request) -> bool:  # type: ignore[type-arg]
    """A browser page of the web app (not its event streams) gets HTML errors."""
    path = request.url.path
    return path.startswith("/app") and not path.startswith("/app/events")


def page_error(request: Request, status: int, message: str) -> Response:  # type: ignore[type-arg]
    if status == 401 and request.method == "GET":
        return Redirect("/signin", query_params={"next": request.url.path}, status_code=303)
    response = Template(template_name="error.html", status_code=status,
                        context={"status": status, "message": message, "me": None,
                                 "csrf": "", "is_creator": False})
    return response


def wants_openai(request: Request) -> bool:  # type: ignore[type-arg]
    return request.url.path.startswith(OPENAI_PREFIX)


def _openai(status: int, body: ErrorResponse, headers: dict[str, str] | None = None
            ) -> Response[ErrorResponse]:
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def openai_http_error(request: Request, exc: HTTPException  # type: ignore[type-arg]
                      ) -> Response[ErrorResponse]:
    """Litestar's own refusals in OpenAI's shape: a body that does not decode or fails the
    schema (``param`` names the field), a path or method ``/v1`` does not have."""
    if isinstance(exc, RequestValidationFailed):
        key = next((str(p["key"]) for p in _problems(exc) if p.get("key")), None)
        return _openai(400, error_response(400, _request_problems(exc), param=key))
    message = str(exc.detail)
    if exc.status_code in (404, 405):
        message = f"{message}: {request.method} {request.url.path}"
    return _openai(exc.status_code, error_response(exc.status_code, message), exc.headers)


def chronos_error_response(request: Request, exc: ChronosError) -> Response:  # type: ignore[type-arg]
    if wants_openai(request):
        status, body = error_of(exc)
        return _openai(status, body, {"WWW-Authenticate": "Bearer"} if status == 401 else None)
    if wants_page(request):
        status = exc.status_code if isinstance(exc, ClientError) else (
            503 if isinstance(exc, TransientError) else 422)
        return page_error(request, status, exc.message)
    headers: dict[str, str] = {}
    if isinstance(exc, ClientError):
        status = exc.status_code
        headers.update(exc.headers)
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, ResumeAt):
            headers["Upload-Offset"] = str(exc.offset)
    elif isinstance(exc, TransientError):
        status, headers["Retry-After"] = 503, "5"
    elif isinstance(exc, TerminalError):
        status = 422
    else:
        status = 500
    return Response(error_body(exc), status_code=status, headers=headers,
                    media_type=MediaType.JSON)


def http_error_response(request: Request, exc: HTTPException) -> Response:  # type: ignore[type-arg]
    if wants_openai(request):
        return openai_http_error(request, exc)
    status, body = http_error_body(exc)
    if wants_page(request):
        return page_error(request, status, body.detail)
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=exc.headers)


def internal_error_response(request: Request, exc: Exception) -> Response:  # type: ignore[type-arg]
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if wants_openai(request):
        return _openai(500, error_response(500, "internal error; see the server log"))
    return Response(ErrorOut("InternalError", "internal error; see the server log"),
                    status_code=500, media_type=MediaType.JSON)
