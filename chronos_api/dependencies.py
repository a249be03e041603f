"""Dependency providers: the services, and the creator behind the request's API key."""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import State

from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.services import Services


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


def provide_creator(request: Request, services: Services) -> Creator:  # type: ignore[type-arg]
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    api_key = key.strip() if scheme.lower() == "bearer" else None
    return services.catalog.authenticate(api_key)
