"""Authentication in one place: a bearer API key or a web session cookie, and one guard.

Every request except the public paths (health, schema, static files, sign-in and
invitation pages) carries either ``Authorization: Bearer <key>`` (a creator's or a
student's key) or the HttpOnly session cookie set at sign-in. The middleware puts the
``Principal`` on ``request.user``. A cookie is ambient — a browser sends it with any
request a hostile page makes — so a state-changing request authenticated by the cookie
must also carry the session's CSRF token (header ``X-CSRF-Token`` or form field
``_csrf``). Bearer requests need none: the key is never sent by the browser on its own.

Students reach only the handlers marked ``opt={"students": True}``; everything else is a
creator's and answers 403 to a student.
"""

from __future__ import annotations

import hmac
from typing import Any

import anyio.to_thread
from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import AuthenticationError, ForbiddenError
from chronos_pipeline.lib.services import Services

SESSION_COOKIE = "chronos_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = ["^/$", "^/health", "^/schema", "^/static/", "^/signin", "^/invite/",
                "^/favicon.ico"]
STUDENTS_OPT = "students"


def bearer_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, key = connection.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


class ChronosAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        services: Services = connection.app.state.services
        catalog = services.catalog
        key = bearer_key(connection)
        if key is not None or connection.headers.get("authorization"):
            principal = await anyio.to_thread.run_sync(catalog.authenticate_key, key)
            return AuthenticationResult(user=principal, auth="key")
        token = connection.cookies.get(SESSION_COOKIE)
        principal_or_none = await anyio.to_thread.run_sync(catalog.web_session, token)
        if principal_or_none is None:
            raise AuthenticationError(
                "sign in first: send 'Authorization: Bearer <API key>' or use the web app"
                if not token else "your session has expired; sign in again"
            )
        return AuthenticationResult(user=principal_or_none, auth="session")


async def _require_csrf(connection: ASGIConnection[Any, Any, Any, Any],
                        principal: Principal) -> None:
    expected = principal.csrf_token or ""
    sent = connection.headers.get(CSRF_HEADER)
    if sent is None and isinstance(connection, Request):
        content_type = connection.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded",
                                    "multipart/form-data")):
            # Parsed once and cached on the request: the handler reads the same form.
            field = (await connection.form()).get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise ForbiddenError("this form or request is missing its CSRF token; reload the page")


async def principal_guard(connection: ASGIConnection[Any, Any, Any, Any],
                          handler: BaseRouteHandler) -> None:
    """Students reach only the handlers that say they may (``opt={"students": True}``);
    a state change made with the session cookie must carry the session's CSRF token."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        return  # a public route
    if user.is_student and not handler.opt.get(STUDENTS_OPT):
        raise ForbiddenError("a student key or session cannot use this; it is the "
                             "course creator's")
    if connection.scope.get("auth") == "session" and \
            connection.scope.get("method", "GET") not in SAFE_METHODS:
        await _require_csrf(connection, user)
