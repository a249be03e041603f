"""Answers students can trust, over HTTP on the sample lecture: follow-ups read with their
session, an honest "not covered" that costs a paid model nothing, and a generative model's
citations checked claim by claim (the paid model is the real Anthropic SDK against the
loopback server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.lib.answering import NOT_COVERED
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import load_chunks
from tests.api.test_chat import parse_sse
from tests.conftest import World
from tests.loopback import Loopback, loopback

TOLERANCE_S = 10.0
# The sample lecture's sentences (samples/lecture/timeline.json).
OVERSOLD_AT_S = 134.177  # "… a reading below thirty is labelled oversold."
NOT_ORDERS_AT_S = 141.9  # "Those levels are not automatic buy or sell orders."
# Whisper hears "Welles Wilder in nineteen seventy eight" as "while they're in 1978".
INTRODUCED = "introduced by the technical analyst"
OFF_TOPIC = "Who won the football World Cup in 1998?"


def cites(references: list[dict[str, Any]], moment: float, top: int = 3) -> bool:
    return any(r["start_s"] - TOLERANCE_S <= moment <= r["end_s"] + TOLERANCE_S
               for r in references[:top])


def ask(client: TestClient[Any], headers: dict[str, str], question: str,
        session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question}
    if session_id:
        body["session_id"] = session_id
    response = client.post("/chat/answer", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def chat_records(world: World, message_id: str) -> list[tuple[str, str]]:
    _, rows = world.services.ledger.query(
        "SELECT DISTINCT stage, provider FROM cost_records WHERE message_id = ? ORDER BY ALL",
        [message_id])
    return [(str(stage), str(provider)) for stage, provider in rows]


@pytest.fixture(scope="module")
def paying(world: World) -> tuple[str, dict[str, str]]:
    """A creator of their own (paid spend stays off the world creator's ledger) with the
    sample lecture's chunks and vectors."""
    creator, key = world.services.catalog.create_creator("Paying creator")
    video = world.services.catalog.create_video(creator.id, "Momentum indicators")
    chunks = load_chunks(world.services, world.services.catalog.find_video(world.video_id))
    vectors, _ = world.services.embedder.embed([c.text for c in chunks])
    world.services.vectors.replace_video(creator_id=creator.id, video_id=video.id,
                                         course_id=None, chunks=chunks, vectors=vectors)
    return creator.id, {"Authorization": f"Bearer {key}"}


@pytest.fixture
def paid(world: World, paying: tuple[str, dict[str, str]]
         ) -> Iterator[tuple[TestClient[Any], Loopback, dict[str, str]]]:
    """That creator's lecture answered by Anthropic's SDK against the loopback server."""
    with loopback() as server:
        settings = world.settings.with_overrides(
            chat_model="anthropic", anthropic_api_key="sk-ant-test",
            anthropic_base_url=server.base_url, provider_max_retries=0)
        services = Services(settings)
        with TestClient(create_app(services=services)) as client:
            yield client, server, paying[1]
        services.close()


def answering(reply: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
    """A loopback model that answers with ``reply`` and names sessions "RSI"."""
    return lambda body: reply(body) if body.get("stream") else "RSI"


def excerpt_times(body: dict[str, Any]) -> list[str]:
    block = next(part["text"] for part in body["messages"][-1]["content"]
                 if part["text"].startswith("Lecture excerpts"))
    return [line[1:6] for line in block.splitlines() if line.startswith("[")]


def excerpt_holding(body: dict[str, Any], text: str) -> str:
    block = next(part["text"] for part in body["messages"][-1]["content"]
                 if part["text"].startswith("Lecture excerpts"))
    for excerpt in block.split("\n\n"):
        if text.lower() in excerpt.lower():
            return excerpt[1:6]
    raise AssertionError(f"no excerpt holds {text!r}")


# 1. conversations -------------------------------------------------------------------------
def test_a_follow_up_in_a_session_retrieves_the_moment_its_first_question_set_up(
    world: World
) -> None:
    first = ask(world.client, world.headers,
                "Below what RSI number would a stock be considered oversold?")
    assert cites(first["references"], OVERSOLD_AT_S)
    follow_up = "Does that mean I should buy immediately?"
    second = ask(world.client, world.headers, follow_up, first["session_id"])
    assert cites(second["references"], NOT_ORDERS_AT_S)
    # Alone, the same words have nothing to go on: a new session is not expected to find it.
    alone = ask(world.client, world.headers, follow_up)
    assert alone["session_id"] != first["session_id"]
    session = world.client.get(f"/chat/sessions/{first['session_id']}",
                               headers=world.headers).json()
    assert session["title"] == "Below what RSI number would a stock be considered oversold?"
    assert [m["content"] for m in session["messages"] if m["role"] == "user"] == [
        "Below what RSI number would a stock be considered oversold?", follow_up]


def test_a_paid_model_rewrites_a_follow_up_sees_the_turns_and_titles_the_session_at_a_cost(
    world: World, paid: tuple[TestClient[Any], Loopback, dict[str, str]]
) -> None:
    client, server, headers = paid

    def model(body: dict[str, Any]) -> str:
        if not body.get("stream"):
            system = json.dumps(body.get("system", ""))
            if "title" in system:
                return "RSI oversold levels"
            return "Is an RSI reading below thirty, oversold, an automatic buy signal?"
        return f"Such levels are not automatic buy or sell orders [{excerpt_times(body)[0]}]."

    server.responder = model
    first = ask(client, headers, "Below what RSI number would a stock be considered oversold?")
    assert first["title"] == "RSI oversold levels"
    assert chat_records(world, first["message_id"]) == [
        ("chat", "anthropic"), ("query-embed", "local"), ("title", "anthropic")]
    second = ask(client, headers, "Does that mean I should buy immediately?",
                 first["session_id"])
    assert "title" not in second and "rewrite_fell_back" not in second
    stages = chat_records(world, second["message_id"])
    assert ("rewrite", "anthropic") in stages and ("chat", "anthropic") in stages
    # The rewrite and title calls are priced like chat: Haiku's input and output rates.
    _, rows = world.services.ledger.query(
        "SELECT stage, unit, unit_price_usd FROM cost_records WHERE provider = 'anthropic' "
        "AND message_id IN (?, ?) AND unit IN ('input_token', 'output_token') ORDER BY ALL",
        [first["message_id"], second["message_id"]])
    prices = {(stage, unit): float(price) * 1e6 for stage, unit, price in rows}
    assert prices[("rewrite", "input_token")] == prices[("chat", "input_token")] == 1.0
    assert prices[("title", "output_token")] == 5.0
    answer_request = [body for path, body in server.requests
                      if path == "/v1/messages" and body.get("stream")][-1]
    roles = [m["role"] for m in answer_request["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert "oversold" in answer_request["messages"][0]["content"]
    assert any(abs(r["start_s"] - NOT_ORDERS_AT_S) <= TOLERANCE_S
               for r in second["references"])


@pytest.mark.parametrize("fault", ["500", "401", "malformed"])
def test_a_failed_rewrite_call_falls_back_to_the_local_rewrite_and_still_answers(
    world: World, paid: tuple[TestClient[Any], Loopback, dict[str, str]], fault: str
) -> None:
    client, server, headers = paid

    def model(body: dict[str, Any]) -> str:
        if not body.get("stream"):
            return "RSI oversold levels"
        times = excerpt_times(body)
        block = next(part["text"] for part in body["messages"][-1]["content"]
                     if part["text"].startswith("Lecture excerpts"))
        cited = (excerpt_holding(body, "automatic") if "automatic" in block.lower()
                 else times[0])
        return f"Such levels are not automatic buy or sell orders [{cited}]."

    server.responder = model
    first = ask(client, headers, "Below what RSI number would a stock be considered oversold?")
    # The follow-up's rewrite call (the first request of its turn) fails, once.
    server.faults["/v1/messages"] = [fault]
    asked = len(server.requests)
    second = ask(client, headers, "Does that mean I should buy immediately?",
                 first["session_id"])
    requests = [body for path, body in server.requests[asked:] if path == "/v1/messages"]
    assert [bool(body.get("stream")) for body in requests] == [False, True]
    assert second["rewrite_fell_back"] is True
    # The local rewrite found the moment the follow-up asks about, and the model cited it.
    assert any(abs(r["start_s"] - NOT_ORDERS_AT_S) <= TOLERANCE_S and r["verified"]
               for r in second["references"])
    # Only what was billed is costed: the chat answer, no rewrite record.
    assert chat_records(world, second["message_id"]) == [
        ("chat", "anthropic"), ("query-embed", "local")]
    _, rows = world.services.ledger.query(
        "SELECT unit, sum(quantity) FROM cost_records WHERE message_id = ? "
        "AND provider = 'anthropic' GROUP BY unit ORDER BY unit", [second["message_id"]])
    billed = {unit: n for unit, n in server.billed[-1].items() if n}
    assert {str(unit): int(n) for unit, n in rows} == billed
    _, total = world.services.ledger.query(
        "SELECT sum(cost_usd) FROM cost_records WHERE message_id = ?", [second["message_id"]])
    assert float(second["cost_usd"]) == pytest.approx(float(total[0][0]))


# 2. not covered ---------------------------------------------------------------------------
def test_an_off_topic_question_gets_not_covered_with_no_references_and_no_chat_cost(
    world: World
) -> None:
    response = world.client.post("/chat", json={"question": OFF_TOPIC}, headers=world.headers)
    events = parse_sse(response.text)
    assert "".join(d["text"] for n, d in events if n == "answer") == NOT_COVERED
    assert next(d for n, d in events if n == "references") == []
    done = events[-1][1]
    assert events[-1][0] == "done" and done["covered"] is False
    assert chat_records(world, done["message_id"]) == [("query-embed", "local")]


def test_an_off_topic_question_makes_no_request_to_a_paid_chat_model(
    world: World, paid: tuple[TestClient[Any], Loopback, dict[str, str]]
) -> None:
    client, server, headers = paid
    body = ask(client, headers, OFF_TOPIC)
    assert body["answer"] == NOT_COVERED and body["references"] == []
    assert body["covered"] is False and body["cost_usd"] == "0"
    assert server.served("/v1/messages") == 0
    assert chat_records(world, body["message_id"]) == [("query-embed", "local")]


# 3. verified citations --------------------------------------------------------------------
def test_the_local_answerers_quotes_are_verified_sentences(world: World) -> None:
    body = ask(world.client, world.headers, "Who invented RSI, and what year was that?")
    assert body["references"] and all(r["verified"] for r in body["references"])


def test_a_supported_citation_points_at_its_own_sentence_and_is_verified(
    world: World, paid: tuple[TestClient[Any], Loopback, dict[str, str]]
) -> None:
    client, server, headers = paid
    server.responder = answering(lambda body: (
        "RSI was introduced by a technical analyst in 1978 "
        f"[{excerpt_holding(body, INTRODUCED)}]."))
    response = client.post("/chat", json={"question": "Who invented RSI?"}, headers=headers)
    references = next(d for n, d in parse_sse(response.text) if n == "references")
    assert len(references) == 1
    ref = references[0]
    assert ref["verified"] is True and ref["note"] == ""
    assert INTRODUCED in ref["text"]
    # The sentence's own time, not the excerpt's (which starts earlier).
    assert abs(ref["start_s"] - 112.6) < 2.0
    assert ref["claim"] == "RSI was introduced by a technical analyst in 1978."


def test_a_loopback_answer_citing_a_time_it_was_not_given_is_flagged_unverified(
    world: World, paid: tuple[TestClient[Any], Loopback, dict[str, str]]
) -> None:
    client, server, headers = paid
    server.answer = "RSI was created by Welles Wilder in 1978 [59:59]."
    response = client.post("/chat", json={"question": "Who invented RSI?"}, headers=headers)
    events = parse_sse(response.text)
    references = next(d for n, d in events if n == "references")
    assert [(r["timestamp"], r["verified"], r["video_id"]) for r in references] == [
        ("59:59", False, "")]
    assert "not among the excerpts" in references[0]["note"]
    session = client.get(f"/chat/sessions/{events[-1][1]['session_id']}",
                         headers=headers).json()
    assert session["messages"][1]["references"][0]["verified"] is False


def test_a_loopback_answer_citing_a_passage_that_does_not_support_its_claim_is_flagged(
    world: World, paid: tuple[TestClient[Any], Loopback, dict[str, str]]
) -> None:
    client, server, headers = paid
    # The right excerpt for RSI's inventor, cited for a claim the lecture never makes.
    server.responder = answering(lambda body: (
        "Photosynthesis turns sunlight into sugar in the chloroplasts "
        f"[{excerpt_holding(body, INTRODUCED)}]. RSI was introduced by a technical analyst "
        f"in 1978 [{excerpt_holding(body, INTRODUCED)}]."))
    body = ask(client, headers, "Who invented RSI?")
    verdicts = {r["claim"]: r["verified"] for r in body["references"]}
    assert verdicts == {
        "Photosynthesis turns sunlight into sugar in the chloroplasts.": False,
        "RSI was introduced by a technical analyst in 1978.": True,
    }
    flagged = next(r for r in body["references"] if not r["verified"])
    assert "does not support" in flagged["note"]
