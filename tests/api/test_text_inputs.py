"""Text inputs are bounded and clean: over-long or NUL-carrying text is a 422 that leaves
nothing behind, on SQLite and on PostgreSQL alike (PostgreSQL used to answer 500)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from chronos_api.app import create_app
from chronos_pipeline.lib.catalog_models import (
    BudgetRow,
    ChatMessageRow,
    ChatSessionRow,
    CourseRow,
    StudentRow,
    VideoRow,
)
from chronos_pipeline.lib.services import Services
from tests.conftest import SAMPLE_MP4, make_settings

NUL = "\x00"
FORTY_DIGITS = "1" * 40


class Api(NamedTuple):
    client: TestClient[Any]
    services: Services
    headers: dict[str, str]
    creator_id: str


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The HTTP API over a catalog on SQLite, or on a fresh PostgreSQL database."""
    overrides: dict[str, Any] = {}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("pg_url")
    services = Services(make_settings(tmp_path / "data", **overrides))
    creator, key = services.catalog.create_creator("Ada")
    with TestClient(create_app(services=services)) as client:
        yield Api(client, services, {"Authorization": f"Bearer {key}"}, creator.id)
    services.close()


def _rows(services: Services) -> dict[str, int]:
    counts: dict[str, int] = {}
    with services.catalog.engine.connect() as connection:
        for row in (VideoRow, CourseRow, ChatSessionRow, ChatMessageRow, BudgetRow, StudentRow):
            counts[row.__tablename__] = int(
                connection.scalar(select(func.count()).select_from(row)) or 0)
    return counts


def _course_id(client: TestClient[Any], headers: dict[str, str]) -> str:
    response = client.post("/courses", json={"name": "Markets 101"}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


JSON_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("course-name-too-long", "/courses", {"name": "c" * 201}),
    ("course-name-nul", "/courses", {"name": f"Markets{NUL}101"}),
    ("title-too-long", "/videos", {"title": "t" * 301}),
    ("title-nul", "/videos", {"title": f"Lecture{NUL}"}),
    ("filename-too-long", "/videos", {"title": "Lecture", "filename": "f" * 501 + ".mp4"}),
    ("filename-nul", "/videos", {"title": "Lecture", "filename": f"a{NUL}.mp4"}),
    ("video-course-id-nul", "/videos", {"title": "Lecture", "course_id": f"co_{NUL}"}),
    ("question-too-long", "/chat", {"question": "q" * 2001}),
    ("question-nul", "/chat", {"question": f"What is RSI?{NUL}"}),
    ("answer-question-nul", "/chat/answer", {"question": f"What{NUL} is RSI?"}),
    ("chat-session-id-nul", "/chat", {"question": "What is RSI?", "session_id": f"cs_{NUL}"}),
    ("chat-course-id-long", "/chat/answer", {"question": "What?", "course_id": "co_" + "0" * 99}),
]


@pytest.mark.parametrize(("path", "body"), [(p, b) for _, p, b in JSON_CASES],
                         ids=[name for name, _, _ in JSON_CASES])
def test_overlong_or_nul_json_input_is_422_and_creates_nothing(
    api: Api, path: str, body: dict[str, Any]
) -> None:
    client, services, headers, _ = api
    before = _rows(services)
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "ValidationError"
    assert _rows(services) == before


BUDGET_CASES: list[tuple[str, dict[str, Any]]] = [
    ("forty-digits", {"monthly_usd": FORTY_DIGITS}),
    ("forty-digit-hard-limit", {"monthly_usd": "25", "hard_limit_usd": FORTY_DIGITS}),
    ("thirteen-digits", {"monthly_usd": "1234567890123"}),
    ("seven-decimals", {"monthly_usd": "1.1234567"}),
    ("negative", {"monthly_usd": "-5"}),
    ("exponent", {"monthly_usd": "1e40"}),
    ("nul", {"monthly_usd": f"25{NUL}"}),
]


@pytest.mark.parametrize("body", [b for _, b in BUDGET_CASES], ids=[n for n, _ in BUDGET_CASES])
def test_unbounded_budget_is_422_and_sets_nothing(
    api: Api, body: dict[str, Any]
) -> None:
    client, services, headers, _ = api
    response = client.put("/budget", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert _rows(services)["budgets"] == 0


def test_largest_budget_that_fits_is_kept_exactly(
    api: Api
) -> None:
    client, _, headers, _ = api
    body = {"monthly_usd": "999999999999.999999", "hard_limit_usd": "999999999999.999999"}
    response = client.put("/budget", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["monthly_usd"] == "999999999999.999999"


UPLOAD_CASES: list[tuple[str, dict[str, str]]] = [
    ("title-too-long", {"title": "t" * 301}),
    ("title-nul", {"title": f"Lecture{NUL}1"}),
    ("filename-too-long", {"title": "Lecture", "filename": "f" * 501}),
    ("filename-nul", {"title": "Lecture", "filename": f"a{NUL}.mp4"}),
]


@pytest.mark.parametrize("params", [p for _, p in UPLOAD_CASES], ids=[n for n, _ in UPLOAD_CASES])
def test_overlong_or_nul_upload_parameters_are_422_and_store_nothing(
    api: Api, params: dict[str, str]
) -> None:
    client, services, headers, _ = api
    response = client.post("/videos/upload", params=params, content=SAMPLE_MP4.read_bytes(),
                           headers=headers)
    assert response.status_code == 422, response.text
    assert _rows(services)["videos"] == 0
    assert not any(services.storage.videos_root.rglob("*.mp4")) \
        if services.storage.videos_root.exists() else True


def test_overlong_student_display_name_is_refused_and_enrols_nobody(
    api: Api
) -> None:
    client, services, headers, creator_id = api
    course_id = _course_id(client, headers)
    _invitation, token = services.catalog.create_invitation(creator_id, course_id)
    for name in ("s" * 101, f"Sam{NUL}"):
        response = client.post(f"/invite/{token}", data={"display_name": name})
        assert response.status_code == 422, response.text
    assert _rows(services)["students"] == 0
