"""Dependency providers: the services, and who is asking (set by the auth middleware)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State

from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import AuthenticationError
from chronos_pipeline.lib.services import Services


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise AuthenticationError("sign in first")
    return user


def provide_creator(request: Request[Any, Any, Any], services: Services) -> Creator:
    """The creator a (creator-only) request acts for; the guard has kept students out."""
    return services.catalog.get_creator(provide_principal(request).creator_id)
