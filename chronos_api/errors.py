"""The one mapping from Chronos errors to HTTP responses."""

from __future__ import annotations

import logging

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

from chronos_pipeline.lib.errors import ChronosError, ClientError, TerminalError, TransientError

log = logging.getLogger("chronos_api")


def error_body(exc: BaseException) -> dict[str, str]:
    message = exc.message if isinstance(exc, ChronosError) else str(exc)
    return {"error": type(exc).__name__, "detail": message}


def chronos_error_response(request: Request, exc: ChronosError) -> Response:  # type: ignore[type-arg]
    headers: dict[str, str] = {}
    if isinstance(exc, ClientError):
        status = exc.status_code
        headers.update(exc.headers)
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, TransientError):
        status, headers["Retry-After"] = 503, "5"
    elif isinstance(exc, TerminalError):
        status = 422
    else:
        status = 500
    return Response(error_body(exc), status_code=status, headers=headers,
                    media_type=MediaType.JSON)


def http_error_response(request: Request, exc: HTTPException) -> Response:  # type: ignore[type-arg]
    return Response({"error": type(exc).__name__, "detail": exc.detail},
                    status_code=exc.status_code, media_type=MediaType.JSON,
                    headers=exc.headers)


def internal_error_response(request: Request, exc: Exception) -> Response:  # type: ignore[type-arg]
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response({"error": "InternalError", "detail": "internal error; see the server log"},
                    status_code=500, media_type=MediaType.JSON)
