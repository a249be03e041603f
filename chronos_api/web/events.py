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
from chronos_pipeline.lib.library_feed import library_snapshot
from litestar import Controller, get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chronos_api.auth import STUDENTS_OPT
from chronos_pipeline.lib.access import course_scope, readable_course
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.services import Services

POLL_S = 1.0
# A stream ends after an hour; EventSource reconnects on its own.
MAX_POLLS = 3600


async def changes(name: str, read: Callable[[], tuple[str, Any]]) -> AsyncIterator[
        ServerSentEventMessage]:
    """Send ``read()``'s payload as event ``name`` whenever its version changes."""
    last = None
    for _ in range(MAX_POLLS):
        version, payload = await anyio.to_thread.run_sync(read)
        if version != last:
            last = version
            yield ServerSentEventMessage(event=name, data=json.dumps(payload, default=str))
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

        def read() -> tuple[str, Any]:
            snapshot = library_snapshot(services.catalog, services.ledger,
                                        principal.creator_id, course_ids=scope,
                                        with_costs=not principal.is_student)
            return snapshot.version, snapshot.to_json()

        return ServerSentEvent(changes("library", read))

    @get("/ledger", sync_to_thread=False)
    def ledger(self, principal: Principal, services: Services) -> ServerSentEvent:
        """A tick whenever a cost record is written (the dashboard then refreshes)."""
        def read() -> tuple[str, Any]:
            version = services.ledger.version()
            return version, {"version": version}

        return ServerSentEvent(changes("ledger", read))
