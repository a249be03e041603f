"""The web app in a real browser: a creator's whole journey, the live dashboard, a student.

Debian's Chromium driven by Playwright against a real ``chronos serve`` whose pipeline
worker processes the upload; nothing is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
from typing import Any

import pytest

from chronos_pipeline.lib.ledger import Usage
from tests.browser.conftest import App, shot
from tests.conftest import SAMPLE_MP4

READY_TIMEOUT_MS = 240_000


def drop_file(page: Any, selector: str, data: bytes, name: str, mime: str) -> None:
    """Drag a file onto ``selector`` the way a browser delivers a drop."""
    page.evaluate(
        """([selector, b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            const target = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
                target.dispatchEvent(new DragEvent(type, init));
            }
        }""",
        [selector, base64.b64encode(data).decode(), name, mime],
    )


@pytest.fixture(scope="module")
def ready_course(app: App, chromium: Any) -> dict[str, Any]:
    """A creator signs in, creates a course, drags the sample lecture into it (the
    connection drops mid-upload and the upload resumes), and sees it go to ready without
    reloading the page."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{app.base}/app")
    page.wait_for_url(f"{app.base}/signin*")
    shot(page, "01-sign-in")
    page.fill("#api_key", app.api_key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{app.base}/app")
    shot(page, "02-library-empty")
    page.fill("#course-name", "Technical analysis")
    page.click("text=Create course")
    page.wait_for_url(f"{app.base}/app/courses/*")
    course_id = page.url.rsplit("/", 1)[-1]
    page.evaluate("window.__sameDocument = true")
    # The connection drops during the fourth of six upload requests (past 50 %).
    puts: list[str] = []

    def cut_fourth_request(route: Any) -> None:
        puts.append(route.request.headers.get("content-range", ""))
        if len(puts) == 4:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/videos/*/content", cut_fourth_request)
    drop_file(page, "#dropzone", SAMPLE_MP4.read_bytes(), "Momentum indicators.mp4",
              "video/mp4")
    # The byte progress bar is there and moves.
    page.wait_for_function("document.querySelector('#uploads progress')?.value > 0")
    page.wait_for_selector("#uploads .upload-state:has-text('processing')", timeout=60_000)
    shot(page, "03-course-uploaded")
    # It resumed from the server's offset (the cut range was sent again, not byte 0) ...
    assert len(puts) == 7, puts  # six ranges, the cut one twice
    assert puts[4] == puts[3] and puts[0].startswith("bytes 0-")
    row = page.locator("li.lecture").first
    page.wait_for_function(
        "document.querySelector('li.lecture')?.dataset.status === 'ready'",
        timeout=READY_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    video_id = row.get_attribute("data-video")
    shot(page, "04-course-ready")
    # ... and the stored lecture is byte-identical to the file the creator dropped.
    source = app.services.storage.source_path(app.creator_id, str(video_id))
    assert source is not None
    assert hashlib.sha256(source.read_bytes()).digest() == \
        hashlib.sha256(SAMPLE_MP4.read_bytes()).digest()
    return {"context": context, "page": page, "course_id": course_id, "video_id": video_id}


def test_a_cited_reference_seeks_the_player_to_its_sentence(
    app: App, ready_course: dict[str, Any]
) -> None:
    page = ready_course["page"]
    page.goto(f"{app.base}/app/chat?course_id={ready_course['course_id']}")
    page.fill("#question", "What does RSI measure?")
    page.click("#chat-form button[type=submit]")
    badge = page.locator("#messages a.ref").first
    badge.wait_for(timeout=60_000)
    page.wait_for_selector("#messages .msg.assistant .meta:has-text('cost')")
    shot(page, "05-chat-answer")
    href = badge.get_attribute("href") or ""
    start = float(href.split("t=")[1])
    badge.click()
    page.wait_for_url(f"{app.base}/app/lectures/*")
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {start}) < 1",
        timeout=20_000)
    current = page.evaluate("document.getElementById('player').currentTime")
    assert abs(current - start) < 1.0
    page.wait_for_selector("#transcript li.current", timeout=10_000)
    shot(page, "06-lecture-seeked")


def test_the_dashboard_matches_chronos_costs_sql_and_shows_a_new_record_within_2_s(
    app: App, ready_course: dict[str, Any]
) -> None:
    page = ready_course["page"]
    page.goto(f"{app.base}/app/usage")
    page.wait_for_selector("#chart-days")
    shot(page, "07-usage-dashboard")
    sql = subprocess.run(
        [sys.executable, "-m", "chronos_pipeline.cli", "costs", "sql", "--json",
         "SELECT stage, sum(cost_usd) AS usd FROM cost_records WHERE creator_id = "
         f"'{app.creator_id}' GROUP BY stage"],
        env={"CHRONOS_DATA_DIR": str(app.data_dir), "PATH": "/usr/bin:/bin",
             "HF_HUB_OFFLINE": "1"},
        capture_output=True, text=True, check=True)
    by_stage = {row["stage"]: float(row["usd"]) for row in json.loads(sql.stdout)}
    shown = {stage: float(page.get_attribute(f"tr[data-stage='{stage}'] td.num", "data-usd"))
             for stage in by_stage}
    assert shown == pytest.approx(by_stage, abs=1e-12)
    mtd = float(page.get_attribute("#mtd-spent", "data-usd"))
    assert mtd == pytest.approx(sum(by_stage.values()), abs=1e-12)
    # A paid call lands while the dashboard is open: it shows within 2 seconds.
    records = app.services.ledger.record(
        Usage("openai", "text-embedding-3-small", {"input_token": 1000.0}),
        creator_id=app.creator_id, stage="query-embed")
    written = time.monotonic()
    page.wait_for_selector(f"tr[data-record='{records[0].record_id}']", timeout=5_000)
    assert time.monotonic() - written <= 2.0
    shot(page, "08-usage-live-record")


def test_an_invited_student_sees_only_their_course_and_no_cost(
    app: App, chromium: Any, ready_course: dict[str, Any]
) -> None:
    catalog = app.services.catalog
    secret = catalog.create_course(app.creator_id, "Not for students")
    hidden = catalog.create_video(app.creator_id, "Hidden lecture", secret.id)
    invitation, token = catalog.create_invitation(app.creator_id, ready_course["course_id"])
    context = chromium.new_context(viewport={"width": 390, "height": 844})  # a phone
    page = context.new_page()
    page.goto(f"{app.base}/invite/{token}")
    shot(page, "09-invite")
    page.fill("#display_name", "Sam")
    page.click("button[type=submit]")
    page.wait_for_selector("#student-key")
    assert page.inner_text("#student-key").startswith("chs_")
    shot(page, "10-welcome-student")
    page.goto(f"{app.base}/app")
    assert "Technical analysis" in page.inner_text("main")
    assert "Not for students" not in page.content()
    shot(page, "11-student-library")
    for path in (f"/app/lectures/{ready_course['video_id']}", "/app/chat", "/app"):
        page.goto(f"{app.base}{path}")
        assert "$" not in page.inner_text("body"), path
    page.goto(f"{app.base}/app/chat?course_id={ready_course['course_id']}")
    page.fill("#question", "What is a golden cross?")
    page.click("#chat-form button[type=submit]")
    page.locator("#messages a.ref").first.wait_for(timeout=60_000)
    page.wait_for_function("!document.querySelector('#messages .msg.assistant[aria-busy]')")
    assert "$" not in page.inner_text("body") and "cost" not in page.inner_text("#messages")
    shot(page, "12-student-chat-phone")
    statuses = page.evaluate(
        """async (ids) => {
            const out = {};
            for (const path of [`/app/lectures/${ids.hidden}`, `/videos/${ids.hidden}`,
                                `/videos/${ids.hidden}/media`, `/videos/${ids.hidden}/transcript`,
                                `/app/courses/${ids.secret}`, `/app/usage`, `/usage`]) {
                out[path] = (await fetch(path)).status;
            }
            const noCsrf = await fetch("/chat", {
                method: "POST", headers: { "Content-Type": "application/json" },
                body: JSON.stringify({ question: "hi" }) });
            out["POST /chat without CSRF"] = noCsrf.status;
            return out;
        }""",
        {"hidden": hidden.id, "secret": secret.id},
    )
    assert statuses == {
        f"/app/lectures/{hidden.id}": 404, f"/videos/{hidden.id}": 404,
        f"/videos/{hidden.id}/media": 404, f"/videos/{hidden.id}/transcript": 404,
        f"/app/courses/{secret.id}": 404, "/app/usage": 403, "/usage": 403,
        "POST /chat without CSRF": 403,
    }
    catalog.revoke_invitation(app.creator_id, invitation.id)
    refused = context.new_page()
    response = refused.goto(f"{app.base}/invite/{token}")
    assert response is not None and response.status == 409
    assert "revoked" in refused.inner_text("main")
    shot(refused, "13-invite-revoked")
    context.close()
