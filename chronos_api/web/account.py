"""Signing in and out, one-time sign-in links, and invitations that make students."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from chronos_api.auth import SESSION_COOKIE
from chronos_api.web.rendering import page
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import ChronosError, ClientError, ForbiddenError
from chronos_pipeline.lib.services import Services

SESSION_TTL = timedelta(days=7)
LINK_TTL = timedelta(minutes=30)
FORM_BODY = Body(media_type=RequestEncodingType.URL_ENCODED)


class SignInForm(msgspec.Struct):
    api_key: str = ""
    next: str = ""


class InviteForm(msgspec.Struct):
    display_name: str = ""


def session_cookie(request: Request[Any, Any, Any], token: str | None) -> Cookie:
    """The session cookie: HttpOnly, SameSite=Lax, Secure over HTTPS; empty to sign out."""
    return Cookie(key=SESSION_COOKIE, value=token or "", path="/", httponly=True,
                  samesite="lax", secure=request.url.scheme == "https",
                  max_age=int(SESSION_TTL.total_seconds()) if token else 0)


def _same_origin(request: Request[Any, Any, Any]) -> None:
    # Sign-in has no session (so no CSRF token) yet: refuse a cross-site form post instead.
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlparse(origin).netloc != request.headers.get("host"):
        raise ForbiddenError("sign-in from another site is refused")


def _local(next_path: str) -> str:
    return next_path if next_path.startswith("/app") and "//" not in next_path else "/app"


def signed_in(request: Request[Any, Any, Any], services: Services,
              principal: Principal, to: str = "/app") -> Redirect:
    token, _csrf = services.catalog.create_web_session(principal, SESSION_TTL)
    return Redirect(to, status_code=303, cookies=[session_cookie(request, token)])


def one_time_link(services: Services, principal: Principal, base_url: str) -> str:
    """A link that signs ``principal`` in once, within 30 minutes (for ``make demo``)."""
    token, _csrf = services.catalog.create_web_session(principal, LINK_TTL)
    return f"{base_url.rstrip('/')}/signin/link?token={token}"


def refused(template: str, exc: ChronosError, **context: Any) -> Template:
    """The form again with the reason, under the error's own status (401, 404, 409, 422)."""
    response = page(template, None, error=exc.message, **context)
    response.status_code = exc.status_code if isinstance(exc, ClientError) else 400
    return response


class AccountController(Controller):
    include_in_schema = False
    security = []

    @get("/", sync_to_thread=True)
    def home(self, request: Request[Any, Any, Any], services: Services) -> Redirect:
        signed = services.catalog.web_session(request.cookies.get(SESSION_COOKIE))
        return Redirect("/app" if signed else "/signin", status_code=303)

    @get("/signin", sync_to_thread=False)
    def signin_page(self, next: str = "", error: str = "") -> Template:
        return page("signin.html", None, next=_local(next) if next else "", error=error)

    @post("/signin", sync_to_thread=True)
    def signin(
        self, request: Request[Any, Any, Any], services: Services,
        data: SignInForm = FORM_BODY,
    ) -> Redirect | Template:
        _same_origin(request)
        try:
            principal = services.catalog.authenticate_key(data.api_key.strip())
        except ChronosError as exc:
            return refused("signin.html", exc, next=data.next)
        return signed_in(request, services, principal, _local(data.next))

    @get("/signin/link", sync_to_thread=True)
    def signin_link(self, request: Request[Any, Any, Any], services: Services,
                    token: str = "") -> Redirect | Template:
        principal = services.catalog.web_session(token)
        if principal is None:
            return page("signin.html", None, next="",
                        error="this sign-in link has expired or was used; sign in with "
                              "your API key")
        services.catalog.end_web_session(token)  # one use only
        return signed_in(request, services, principal)

    @post("/signout", sync_to_thread=True)
    def signout(self, request: Request[Any, Any, Any], services: Services) -> Redirect:
        services.catalog.end_web_session(request.cookies.get(SESSION_COOKIE))
        return Redirect("/signin", status_code=303, cookies=[session_cookie(request, None)])

    @get("/invite/{token:str}", sync_to_thread=True)
    def invite_page(self, token: str, services: Services) -> Template:
        try:
            _invitation, course_name = services.catalog.open_invitation(token)
        except ChronosError as exc:
            return refused("invite.html", exc, token=token, course=None)
        return page("invite.html", None, token=token, course=course_name, error="")

    @post("/invite/{token:str}", sync_to_thread=True)
    def accept_invite(
        self, token: str, request: Request[Any, Any, Any], services: Services,
        data: InviteForm = FORM_BODY,
    ) -> Template:
        _same_origin(request)
        try:
            _invitation, course_name = services.catalog.open_invitation(token)
            student, api_key = services.catalog.redeem_invitation(token, data.display_name)
        except ChronosError as exc:
            return refused("invite.html", exc, token=token, course=None)
        principal = Principal(student.creator_id, student.display_name, student.id)
        session, _csrf = services.catalog.create_web_session(principal, SESSION_TTL)
        response = page("welcome.html", principal, course=course_name, api_key=api_key)
        response.cookies.append(session_cookie(request, session))
        return response
