"""The web app's pages over a real app: sign-in, sessions, CSRF, what students may see."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import World


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "every signed-in page carries its CSRF token"
    return match.group(1)


@pytest.fixture
def browser(world: World) -> Any:
    """A second client with its own cookie jar, signed in as the world's creator."""
    from chronos_api.app import create_app

    with TestClient(create_app(services=world.services)) as client:
        response = client.post("/signin", data={"api_key": world.api_key},
                               follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/app"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        yield client


def test_a_signed_out_browser_is_sent_to_sign_in(world: World) -> None:
    response = world.client.get("/app", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin")


def test_a_wrong_key_is_refused_on_the_sign_in_page(world: World) -> None:
    response = world.client.post("/signin", data={"api_key": "chr_nope"})
    assert response.status_code == 401
    assert "invalid API key" in response.text


def test_the_library_shows_the_creators_course_lecture_and_cost(
    world: World, browser: Any
) -> None:
    page = browser.get("/app")
    assert page.status_code == 200
    assert "Markets 101" in page.text and "Momentum indicators" in page.text
    assert f'id="lecture-{world.video_id}"' in page.text


def test_a_form_posted_without_the_csrf_token_is_refused(world: World, browser: Any) -> None:
    refused = browser.post("/app/courses", data={"name": "Sneaky"}, follow_redirects=False)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    names = [c.name for c in world.services.catalog.list_courses(world.creator_id)]
    assert "Sneaky" not in names
    token = csrf_of(browser.get("/app").text)
    made = browser.post("/app/courses", data={"name": "Honest", "_csrf": token},
                        follow_redirects=False)
    assert made.status_code == 303
    assert "Honest" in [c.name for c in world.services.catalog.list_courses(world.creator_id)]


def test_a_json_request_with_the_cookie_needs_the_csrf_header(
    world: World, browser: Any
) -> None:
    assert browser.post("/courses", json={"name": "X"}).status_code == 403
    token = csrf_of(browser.get("/app").text)
    assert browser.post("/courses", json={"name": "Y"},
                        headers={"X-CSRF-Token": token}).status_code == 201


def test_sign_out_ends_the_session(world: World, browser: Any) -> None:
    token = csrf_of(browser.get("/app").text)
    out = browser.post("/signout", data={"_csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    assert browser.get("/app", follow_redirects=False).status_code == 303


def test_a_cross_site_sign_in_post_is_refused(world: World) -> None:
    response = world.client.post("/signin", data={"api_key": world.api_key},
                                 headers={"Origin": "https://evil.example"})
    assert response.status_code == 403


def test_an_invited_student_joins_sees_the_course_and_never_a_cost(world: World) -> None:
    from chronos_api.app import create_app

    _inv, token = world.services.catalog.create_invitation(world.creator_id, world.course_id)
    with TestClient(create_app(services=world.services)) as client:
        form = client.get(f"/invite/{token}")
        assert form.status_code == 200 and "Markets 101" in form.text
        joined = client.post(f"/invite/{token}", data={"display_name": "Ana"})
        assert joined.status_code == 201 or joined.status_code == 200
        assert "chs_" in joined.text  # the student's key, shown once
        for path in ("/app", f"/app/courses/{world.course_id}",
                     f"/app/lectures/{world.video_id}", "/app/chat"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert "$" not in page.text, f"{path} shows a cost to a student"
        assert client.get("/app/usage").status_code == 403
        other = world.services.catalog.create_course(world.creator_id, "Private")
        assert client.get(f"/app/courses/{other.id}").status_code == 404


def test_the_dashboard_totals_equal_the_ledger(world: World, browser: Any) -> None:
    page = browser.get("/app/usage")
    assert page.status_code == 200
    _, rows = world.services.ledger.query(
        "SELECT coalesce(sum(cost_usd), 0) FROM cost_records WHERE creator_id = ? "
        "AND occurred_at >= date_trunc('month', now())", [world.creator_id])
    shown = re.search(r'id="mtd-spent" data-usd="([^"]+)"', page.text)
    assert shown and float(shown.group(1)) == pytest.approx(float(rows[0][0]), abs=1e-12)
    export = browser.get("/app/usage/export/csv")
    assert export.status_code == 200 and export.text.startswith("record_id")
