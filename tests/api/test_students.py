"""Students: invited to a course, they reach its lectures and chat, and nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chronos_pipeline.lib.errors import ConflictError
from tests.api.test_chat import parse_sse
from tests.conftest import World


@pytest.fixture
def student(world: World) -> dict[str, str]:
    _invitation, token = world.services.catalog.create_invitation(world.creator_id,
                                                                  world.course_id)
    created, key = world.services.catalog.redeem_invitation(token, "Sam Student")
    return {"id": created.id, "key": key, "Authorization": f"Bearer {key}"}


def _headers(student: dict[str, str]) -> dict[str, str]:
    return {"Authorization": student["Authorization"]}


def test_a_student_sees_only_enrolled_courses_and_their_lectures(
    world: World, student: dict[str, str]
) -> None:
    other = world.services.catalog.create_course(world.creator_id, "Not yours")
    courses = world.client.get("/courses", headers=_headers(student)).json()
    assert [c["id"] for c in courses] == [world.course_id]
    videos = world.client.get("/videos", headers=_headers(student)).json()
    assert [v["id"] for v in videos] == [world.video_id]
    assert world.client.get(f"/videos?course_id={other.id}",
                            headers=_headers(student)).status_code == 404


def test_a_student_cannot_open_another_courses_lecture_transcript_or_chat(
    world: World, student: dict[str, str]
) -> None:
    other = world.services.catalog.create_course(world.creator_id, "Elsewhere")
    hidden = world.services.catalog.create_video(world.creator_id, "Hidden", other.id)
    for path in (f"/videos/{hidden.id}", f"/videos/{hidden.id}/transcript",
                 f"/videos/{hidden.id}/thumbnail"):
        response = world.client.get(path, headers=_headers(student))
        assert response.status_code == 404, path
        assert "Hidden" not in response.text
    chat = world.client.post("/chat/answer", json={"question": "What is RSI?",
                                                   "course_id": other.id},
                             headers=_headers(student))
    assert chat.status_code == 404


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/courses"), ("get", "/usage"), ("get", "/usage/costs"), ("get", "/budget"),
    ("post", "/videos"), ("put", "/budget"),
])
def test_a_student_key_on_a_creators_route_is_403(
    world: World, student: dict[str, str], method: str, path: str
) -> None:
    response = getattr(world.client, method)(path, headers=_headers(student),
                                             **({"json": {}} if method != "get" else {}))
    assert response.status_code == 403
    assert response.json()["error"] == "ForbiddenError"


def test_a_students_question_is_costed_to_the_creator_with_the_students_id_and_no_cost_shown(
    world: World, student: dict[str, str]
) -> None:
    response = world.client.post("/chat", json={"question": "What is RSI?"},
                                 headers=_headers(student))
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[-1] == "done"
    references = next(data for name, data in events if name == "references")
    assert references and {r["video_id"] for r in references} == {world.video_id}
    done = events[-1][1]
    assert "cost_usd" not in done and "usage" not in done
    _, rows = world.services.ledger.query(
        "SELECT creator_id, student_id FROM cost_records WHERE chat_session_id = ?",
        [done["session_id"]])
    assert rows and all(r == (world.creator_id, student["id"]) for r in rows)
    answer = world.client.post("/chat/answer", json={"question": "What is RSI?"},
                               headers=_headers(student)).json()
    assert "cost_usd" not in answer and "usage" not in answer


def test_a_student_sees_only_their_own_chat_sessions(
    world: World, student: dict[str, str]
) -> None:
    mine = world.client.post("/chat/answer", json={"question": "What is a golden cross?"},
                             headers=_headers(student)).json()["session_id"]
    creators = world.client.post("/chat/answer", json={"question": "What is RSI?"},
                                 headers=world.headers).json()["session_id"]
    listed = [s["id"] for s in world.client.get("/chat/sessions",
                                                headers=_headers(student)).json()]
    assert listed == [mine]
    assert world.client.get(f"/chat/sessions/{creators}",
                            headers=_headers(student)).status_code == 404
    titled = world.client.get(f"/chat/sessions/{mine}", headers=_headers(student)).json()
    assert titled["title"] == "What is a golden cross?"


def test_a_student_over_their_monthly_cap_is_refused_before_any_spend(
    world: World, student: dict[str, str]
) -> None:
    from decimal import Decimal

    world.services.catalog.set_student_cap(world.creator_id, student["id"], Decimal(0))
    response = world.client.post("/chat/answer", json={"question": "What is RSI?"},
                                 headers=_headers(student))
    assert response.status_code == 402
    assert "$" not in response.json()["detail"]  # a student never sees money


def test_revoked_expired_and_used_up_invitations_are_refused(world: World) -> None:
    catalog = world.services.catalog
    revoked, token = catalog.create_invitation(world.creator_id, world.course_id)
    catalog.revoke_invitation(world.creator_id, revoked.id)
    with pytest.raises(ConflictError, match="revoked"):
        catalog.redeem_invitation(token, "Late")
    _short, soon = catalog.create_invitation(world.creator_id, world.course_id,
                                             ttl=timedelta(minutes=1))
    from sqlalchemy import update

    from chronos_pipeline.lib.catalog_models import InvitationRow
    with catalog._sessions.begin() as session:
        session.execute(update(InvitationRow).where(InvitationRow.id == _short.id)
                        .values(expires_at=_short.created_at - timedelta(seconds=1)))
    with pytest.raises(ConflictError, match="expired"):
        catalog.redeem_invitation(soon, "Late")
    _once, single = catalog.create_invitation(world.creator_id, world.course_id, max_uses=1)
    catalog.redeem_invitation(single, "First")
    with pytest.raises(ConflictError, match="as many people"):
        catalog.redeem_invitation(single, "Second")
    page = world.client.get(f"/invite/{token}")
    assert page.status_code == 409 and "revoked" in page.text


def test_health_is_public_and_everything_else_needs_a_key(world: World) -> None:
    assert world.client.get("/health").status_code == 200
    response = world.client.get("/videos")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
