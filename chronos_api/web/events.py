"""Server-sent events for the live pages: the library's processing and the ledger's growth.

Each stream polls the catalog (and the ledger) once a second in a worker thread and sends
only when something changed, so an open page costs one small query a second and the
event loop never blocks on the database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.to_thread
from litestar import Controller, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chronos_api.auth import STUDENTS_OPT
from chronos_pipeline.lib.access import course_scope, readable_course
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.library_feed import (
    LibrarySnapshot,
    library_snapshot,
    library_version,
)
from chronos_pipeline.lib.services import Services

POLL_S = 1.0
# A stream ends after an hour; EventSource reconnects on its own.
MAX_POLLS = 3600


async def changes(name: str, version: Callable[[], str],
                  payload: Callable[[], Any]) -> AsyncIterator[ServerSentEventMessage]:
    """Send ``payload()`` as event ``name`` whenever the cheap ``version()`` moves."""
    last = None
    for _ in range(MAX_POLLS):
        now = await anyio.to_thread.run_sync(version)
        if now != last:
            last = now
            data = await anyio.to_thread.run_sync(payload)
            yield ServerSentEventMessage(event=name, data=json.dumps(data, default=str))
        await anyio.sleep(POLL_S)


class LiveEventsController(Controller):
    path = "/app/events"
    include_in_schema = False

    @get("/library", sync_to_thread=True, opt={STUDENTS_OPT: True})
    def library(self, principal: Principal, services: Services,
                course_id: str | None = None) -> ServerSentEvent:
        """Every readable lecture's status, progress and (for creators) cost so far."""
        if course_id is not None:
            readable_course(services.catalog, principal, course_id)
        scope = course_scope(services.catalog, principal)
        if course_id is not None:
            scope = [course_id]

        costs = not principal.is_student
        previous: list[LibrarySnapshot] = []

        def version() -> str:
            return library_version(services.catalog, services.ledger, principal.creator_id,
                                   course_ids=scope, include_costs=costs)

        def payload() -> dict[str, Any]:
            snapshot = library_snapshot(services.catalog, services.ledger,
                                        principal.creator_id, course_ids=scope,
                                        include_costs=costs,
                                        previous=previous[-1] if previous else None)
            previous[:] = [snapshot]
            return snapshot.to_json()

        return ServerSentEvent(changes("library", version, payload))

    @get("/ledger", sync_to_thread=False)
    def ledger(self, principal: Principal, services: Services) -> ServerSentEvent:
        """A tick whenever a cost record is written (the dashboard then refreshes)."""
        ledger = services.ledger
        return ServerSentEvent(changes("ledger", ledger.version,
                                       lambda: {"version": ledger.version()}))
