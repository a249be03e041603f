"""The one mapping from Chronos errors to HTTP responses."""

from __future__ import annotations

import logging

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from chronos_pipeline.lib.errors import (
    ChronosError,
    ClientError,
    ResumeAt,
    TerminalError,
    TransientError,
)

log = logging.getLogger("chronos_api")


def error_body(exc: BaseException) -> dict[str, str | int]:
    message = exc.message if isinstance(exc, ChronosError) else str(exc)
    body: dict[str, str | int] = {"error": type(exc).__name__, "detail": message}
    if isinstance(exc, ResumeAt):
        body["offset"] = exc.offset
    return body


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
    if wants_page(request):
        return page_error(request, exc.status_code, str(exc.detail))
    return Response({"error": type(exc).__name__, "detail": exc.detail},
                    status_code=exc.status_code, media_type=MediaType.JSON,
                    headers=exc.headers)


def internal_error_response(request: Request, exc: Exception) -> Response:  # type: ignore[type-arg]
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response({"error": "InternalError", "detail": "internal error; see the server log"},
                    status_code=500, media_type=MediaType.JSON)
