"""The one mapping from Chronos errors to HTTP responses."""

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

log = logging.getLogger("chronos_api")


def error_body(exc: BaseException) -> ErrorOut:
    message = exc.message if isinstance(exc, ChronosError) else str(exc)
    return ErrorOut(type(exc).__name__, message,
                    exc.offset if isinstance(exc, ResumeAt) else None)


def _request_problems(exc: RequestValidationFailed) -> str:
    """Litestar's own request validation, said as one message: which input, what is wrong."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    said = [f"{getattr(p.get('source'), 'value', p.get('source'))} {p.get('key', '')}: "
            f"{p.get('message', '')}" for p in problems if isinstance(p, dict)]
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


def chronos_error_response(request: Request, exc: ChronosError) -> Response:  # type: ignore[type-arg]
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
    status, body = http_error_body(exc)
    if wants_page(request):
        return page_error(request, status, body.detail)
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=exc.headers)


def internal_error_response(request: Request, exc: Exception) -> Response:  # type: ignore[type-arg]
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(ErrorOut("InternalError", "internal error; see the server log"),
                    status_code=500, media_type=MediaType.JSON)
