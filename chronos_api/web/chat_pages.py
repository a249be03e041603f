"""The chat page: sessions with titles, the streamed answer, references that seek."""

from __future__ import annotations

from decimal import Decimal

from litestar import Controller, get
from litestar.response import Template

from chronos_api.auth import STUDENTS_OPT
from chronos_api.web.rendering import page
from chronos_pipeline.lib.access import readable_course, readable_courses
from chronos_pipeline.lib.catalog import ChatSession
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.services import Services


def message_costs(services: Services, creator_id: str, session_id: str) -> dict[str, Decimal]:
    """What each answer of a session cost (query embedding + chat), by message id."""
    _, rows = services.ledger.query(
        "SELECT message_id, sum(cost_usd) FROM cost_records "
        "WHERE creator_id = ? AND chat_session_id = ? GROUP BY message_id",
        [creator_id, session_id],
    )
    return {str(mid): Decimal(cost) for mid, cost in rows if mid is not None}


class ChatPageController(Controller):
    path = "/app/chat"
    include_in_schema = False

    @get("/", sync_to_thread=True, opt={STUDENTS_OPT: True})
    def new_chat(self, principal: Principal, services: Services,
                 course_id: str = "") -> Template:
        return self._render(principal, services, None, course_id or None)

    @get("/{session_id:str}", sync_to_thread=True, opt={STUDENTS_OPT: True})
    def chat(self, session_id: str, principal: Principal, services: Services) -> Template:
        session = services.catalog.get_chat_session(principal.creator_id, session_id,
                                                    principal.student_id)
        return self._render(principal, services, session, session.course_id)

    @staticmethod
    def _render(principal: Principal, services: Services, session: ChatSession | None,
                course_id: str | None) -> Template:
        catalog = services.catalog
        course = readable_course(catalog, principal, course_id) if course_id else None
        messages = catalog.chat_messages(session.id) if session else []
        costs: dict[str, Decimal] = {}
        if session is not None and not principal.is_student:
            costs = message_costs(services, principal.creator_id, session.id)
        return page(
            "chat.html", principal, nav="chat", session=session, course=course,
            courses=readable_courses(catalog, principal),
            sessions=list(reversed(catalog.list_chat_sessions(principal.creator_id,
                                                              principal.student_id))),
            messages=messages, costs=costs, total=sum(costs.values(), Decimal(0)),
        )
