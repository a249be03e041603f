"""Chat over HTTP on the sample lecture: cited moments, SSE events, isolation, history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import World

TOLERANCE_S = 10.0


def parse_sse(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data.append(line.removeprefix("data:").strip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


def cites(references: list[dict[str, Any]], moment: float) -> bool:
    return any(r["start_s"] - TOLERANCE_S <= moment <= r["end_s"] + TOLERANCE_S
               for r in references)


# The coverage threshold, calibrated on the sample and hashing lectures, refuses one covered
# question of 28 there (the 5 % it allows): this one, whose wording ("lookback length")
# shares little with the lecture's ("fourteen periods").
KNOWN_FALSE_ABSTENTIONS = {"What lookback length is RSI normally calculated over?"}


def test_every_sample_question_gets_a_reference_near_its_moment_over_sse(
    world: World, sample_questions: list[dict[str, Any]]
) -> None:
    misses = []
    refused = set()
    for item in sample_questions:
        response = world.client.post("/chat", json={"question": item["question"]},
                                     headers=world.headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(response.text)
        names = [name for name, _ in events]
        assert names[0] == "answer" and names[-1] == "done" and "references" in names
        references = next(data for name, data in events if name == "references")
        if not events[-1][1]["covered"]:
            refused.add(item["question"])
            continue
        for ref in references:
            assert set(ref) == {"video_id", "title", "start_s", "end_s", "timestamp", "text",
                                "score", "verified", "claim", "note"}
            assert ref["verified"] is True
            assert ref["video_id"] == world.video_id and ref["title"] == "Momentum indicators"
        if not cites(references, item["answer_at_s"]):
            misses.append((item["question"], item["answer_at_s"],
                           [r["start_s"] for r in references]))
    assert misses == []
    assert refused <= KNOWN_FALSE_ABSTENTIONS


def test_done_event_carries_usage_and_cost_and_the_ledger_has_them(world: World) -> None:
    response = world.client.post("/chat", json={"question": "Who created the RSI?"},
                                 headers=world.headers)
    events = parse_sse(response.text)
    done = events[-1][1]
    assert done["cost_usd"] == "0" and done["usage"]["input_token"] > 0
    _, rows = world.services.ledger.query(
        "SELECT stage, count(*) FROM cost_records WHERE message_id = ? GROUP BY stage "
        "ORDER BY stage", [done["message_id"]])
    # The question is embedded once: the answerer and the coverage check read the
    # sentences' stored vectors.
    assert rows == [("chat", 2), ("query-embed", 1)]


def test_json_answer_quotes_the_moment_with_its_timestamp(world: World) -> None:
    response = world.client.post("/chat/answer",
                                 json={"question": "What period does RSI normally use?"},
                                 headers=world.headers)
    assert response.status_code == 200
    body = response.json()
    top = body["references"][0]
    assert f"[{top['timestamp']}]" in body["answer"]
    assert body["session_id"].startswith("cs_")


def test_chat_history_is_kept_per_session(world: World) -> None:
    first = world.client.post("/chat/answer", json={"question": "What is a golden cross?"},
                              headers=world.headers).json()
    world.client.post("/chat/answer", json={"question": "And a death cross?",
                                            "session_id": first["session_id"]},
                      headers=world.headers)
    session = world.client.get(f"/chat/sessions/{first['session_id']}",
                               headers=world.headers).json()
    assert [m["role"] for m in session["messages"]] == ["user", "assistant"] * 2
    assert session["messages"][1]["references"]


def test_another_creator_gets_nothing_from_these_lectures(world: World) -> None:
    _, key = world.services.catalog.create_creator("Bob")
    bob = {"Authorization": f"Bearer {key}"}
    body = world.client.post("/chat/answer", json={"question": "What is RSI?"},
                             headers=bob).json()
    assert body["references"] == []
    assert "could not find" in body["answer"]
    sessions = world.client.get("/chat/sessions", headers=world.headers).json()
    assert sessions
    other = world.client.get(f"/chat/sessions/{sessions[0]['id']}", headers=bob)
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"question": "   "}, 422),
        ({"question": "x" * 2001}, 422),
        ({"question": "What is RSI?", "course_id": "co_0000000000000000"}, 404),
        ({"question": "What is RSI?", "session_id": "cs_0000000000000000"}, 404),
        ({"nope": "x"}, 422),
    ],
    ids=["empty", "too-long", "unknown-course", "unknown-session", "malformed"],
)
def test_bad_chat_requests_fail_before_streaming(
    world: World, body: dict[str, Any], status: int
) -> None:
    response = world.client.post("/chat", json=body, headers=world.headers)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")


def test_usage_reports_the_creators_own_spend(world: World) -> None:
    usage = world.client.get("/usage", headers=world.headers).json()
    stages = {row["stage"] for row in usage["by_stage"]}
    assert {"upload", "transcribe", "embed"} <= stages
    assert usage["total_cost_usd"] == "0"
    costs = world.client.get("/usage/costs", headers=world.headers).json()
    assert {row["video_id"] for row in costs} >= {world.video_id}


def test_transcript_and_thumbnail_are_served(world: World) -> None:
    transcript = world.client.get(f"/videos/{world.video_id}/transcript",
                                  headers=world.headers).json()
    assert transcript["segments"][0]["words"][0].keys() == {"word", "start_s", "end_s"}
    thumb = world.client.get(f"/videos/{world.video_id}/thumbnail", headers=world.headers)
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"


def test_a_session_started_in_a_course_answers_from_that_course_only(world: World) -> None:
    empty = world.services.catalog.create_course(world.creator_id, "Nothing here yet")
    started = world.client.post("/chat/answer", json={"question": "What is RSI?",
                                                      "course_id": empty.id},
                                headers=world.headers).json()
    assert started["references"] == []
    # The follow-up names only the session: it is still asked of the empty course, not of
    # every course (where the sample lecture answers it).
    follow = world.client.post("/chat/answer", json={"question": "What is RSI?",
                                                     "session_id": started["session_id"]},
                               headers=world.headers)
    assert follow.status_code == 200
    assert follow.json()["references"] == []
    elsewhere = world.client.post("/chat/answer", json={
        "question": "What is RSI?", "session_id": started["session_id"],
        "course_id": world.course_id}, headers=world.headers)
    assert elsewhere.status_code == 422
    assert "start a new session" in elsewhere.json()["detail"]
    assert len(world.services.catalog.chat_messages(started["session_id"])) == 4
