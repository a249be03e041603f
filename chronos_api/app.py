"""The Litestar application factory: the one place the API is assembled."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from chronos_api.controllers.budgets import BudgetController
from chronos_api.controllers.chat import ChatController
from chronos_api.controllers.courses import CourseController
from chronos_api.controllers.media import MediaController
from chronos_api.controllers.usage import UsageController
from chronos_api.controllers.videos import VideoController
from chronos_api.dependencies import provide_creator, provide_services
from chronos_api.errors import chronos_error_response, http_error_response, internal_error_response
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings


@get("/health", tags=["health"])
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    services = services or Services(settings or Settings.from_env())

    def close_services() -> None:
        services.close()

    return Litestar(
        route_handlers=[health, CourseController, VideoController, ChatController,
                        UsageController, BudgetController, MediaController],
        state=State({"services": services}),
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "creator": Provide(provide_creator, sync_to_thread=True),
        },
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
