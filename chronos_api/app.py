"""The Litestar application factory: the one place the API is assembled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path

import anyio.to_thread
from litestar import Litestar, get
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from chronos_api.auth import PUBLIC_PATHS, ChronosAuthMiddleware, principal_guard
from chronos_api.bodies import JsonRequest
from chronos_api.controllers.budgets import BudgetController
from chronos_api.controllers.chat import ChatController
from chronos_api.controllers.courses import CourseController
from chronos_api.controllers.media import MediaController
from chronos_api.controllers.openai_compat import OpenAIController
from chronos_api.controllers.usage import UsageController
from chronos_api.controllers.videos import VideoController
from chronos_api.dependencies import provide_creator, provide_principal, provide_services
from chronos_api.errors import chronos_error_response, http_error_response, internal_error_response
from chronos_api.openapi import PublicOperation
from chronos_api.schemas import HealthOut
from chronos_api.web.account import AccountController
from chronos_api.web.chat_pages import ChatPageController
from chronos_api.web.events import LiveEventsController
from chronos_api.web.lectures import LecturePageController
from chronos_api.web.library import LibraryController
from chronos_api.web.rendering import FILTERS
from chronos_api.web.usage_page import UsagePageController
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.ledger_compaction import compact_ledger
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings

log = logging.getLogger("chronos_api")


def clean_uploads(services: Services) -> None:
    removed = services.ingest.clean_expired()
    if removed:
        log.info("removed %d abandoned upload(s)", removed)


def compact_ledger_once(services: Services) -> None:
    report = compact_ledger(services.ledger)
    if report.days or report.reconciled_calls:
        log.info("ledger compacted: %d file(s) → %d in %.2f s; %d call(s) reconciled",
                 report.files_before, report.files_after, report.seconds,
                 report.reconciled_calls)


Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def every(interval_s: float, work: Callable[[], None], what: str, *,
          wait_for_first: bool = False) -> Lifespan:
    """Run ``work`` in a worker thread at start-up and every ``interval_s`` seconds while
    the app serves (``wait_for_first``: start serving only after the first round). A failed
    round — a busy catalog, a full disk — is logged and tried again next time; several
    workers may run the same work, which is safe (each job takes its own locks)."""

    async def once() -> None:
        try:
            await anyio.to_thread.run_sync(work)
        except Exception:
            log.exception("%s failed; trying again later", what)

    async def loop(skip_first: bool) -> None:
        if not skip_first:
            await once()
        while True:
            await asyncio.sleep(interval_s)
            await once()

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        if wait_for_first:
            await once()
        task = asyncio.create_task(loop(skip_first=wait_for_first))
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return lifespan


STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"


def _template_filters(engine: JinjaTemplateEngine) -> None:
    for name, function in FILTERS.items():
        engine.engine.filters[name] = function


@get("/health", tags=["health"], exclude_from_auth=True, operation_class=PublicOperation)
async def health() -> HealthOut:
    """The server is up (no authentication)."""
    return HealthOut("ok")


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    services = services or Services(settings or Settings.from_env())

    def close_services() -> None:
        services.close()

    return Litestar(
        route_handlers=[health, CourseController, VideoController, ChatController,
                        UsageController, BudgetController, MediaController, OpenAIController,
                        AccountController, LibraryController, LecturePageController,
                        ChatPageController, LiveEventsController, UsagePageController,
                        create_static_files_router("/static", directories=[STATIC_DIR])],
        template_config=TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine,
                                       engine_callback=_template_filters),
        state=State({"services": services}),
        request_class=JsonRequest,
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "creator": Provide(provide_creator, sync_to_thread=True),
        },
        middleware=[DefineMiddleware(ChronosAuthMiddleware, exclude=PUBLIC_PATHS)],
        guards=[principal_guard],
        exception_handlers={
            ChronosError: chronos_error_response,
            HTTPException: http_error_response,
            Exception: internal_error_response,
        },
        openapi_config=OpenAPIConfig(
            title="Chronos API",
            version="0.1.0",
            description="Upload lectures, follow their processing, ask questions with cited "
            "moments, and see every cost. Authenticate with 'Authorization: Bearer <API key>'.",
            path="/schema",
            components=Components(security_schemes={
                "BearerAuth": SecurityScheme(type="http", scheme="bearer")
            }),
            security=[{"BearerAuth": []}],
        ),
        lifespan=[
            # Expired partial uploads go before the first request is served.
            every(services.settings.upload_clean_interval_s, lambda: clean_uploads(services),
                  "cleaning abandoned uploads", wait_for_first=True),
            # A ledger left uncompacted while no server ran reads slowly: compact at once.
            every(services.settings.ledger_compact_interval_s,
                  lambda: compact_ledger_once(services), "compacting the cost ledger"),
        ],
        on_shutdown=[close_services],
    )
