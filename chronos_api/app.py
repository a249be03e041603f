"""The Litestar application factory: the one place the API is assembled."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar, get
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from chronos_api.auth import PUBLIC_PATHS, ChronosAuthMiddleware, principal_guard
from chronos_api.controllers.budgets import BudgetController
from chronos_api.controllers.chat import ChatController
from chronos_api.controllers.courses import CourseController
from chronos_api.controllers.usage import UsageController
from chronos_api.controllers.videos import VideoController
from chronos_api.web.account import AccountController
from chronos_api.web.chat_pages import ChatPageController
from chronos_api.web.events import LiveEventsController
from chronos_api.web.lectures import LecturePageController
from chronos_api.web.library import LibraryController
from chronos_api.web.rendering import FILTERS
from chronos_api.dependencies import provide_creator, provide_principal, provide_services
from chronos_api.errors import chronos_error_response, http_error_response, internal_error_response
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings


STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"


def _template_filters(engine: JinjaTemplateEngine) -> None:
    for name, function in FILTERS.items():
        engine.engine.filters[name] = function


@get("/health", tags=["health"], security=[], exclude_from_auth=True)
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    services = services or Services(settings or Settings.from_env())

    def close_services() -> None:
        services.close()

    return Litestar(
        route_handlers=[health, CourseController, VideoController, ChatController,
                        UsageController, BudgetController,
                        AccountController, LibraryController, LecturePageController,
                        ChatPageController, LiveEventsController,
                        create_static_files_router("/static", directories=[STATIC_DIR])],
        template_config=TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine,
                                       engine_callback=_template_filters),
        state=State({"services": services}),
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
        on_shutdown=[close_services],
    )
