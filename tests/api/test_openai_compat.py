"""The OpenAI-compatible endpoint, driven by the official ``openai`` SDK against a real server.

``chronos serve`` runs on the world's data directory; the SDK talks to it as it would to
OpenAI, with a Chronos key as its API key.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from litestar.testing import TestClient
from openai import OpenAI

from chronos_api.app import create_app
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.services import Services
from tests.conftest import World
from tests.servers import free_port, running

TOLERANCE_S = 10.0
QUESTION = "Who invented RSI, and what year was that?"
RSI_AT_S = 112.642
SOURCE_LINE = re.compile(r"^\[\d\d:\d\d\] Momentum indicators$", re.MULTILINE)


@pytest.fixture(scope="module")
def base_url(world: World) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "chronos_pipeline.cli", "serve", "--port", str(port),
               "--no-pipeline"]
    base = f"http://127.0.0.1:{port}"
    with running(command, {"CHRONOS_DATA_DIR": str(world.settings.data_dir)},
                 f"{base}/health"):
        yield base


def sdk(base_url: str, key: str) -> OpenAI:
    return OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def student(world: World) -> dict[str, str]:
    _invitation, token = world.services.catalog.create_invitation(world.creator_id,
                                                                  world.course_id)
    created, key = world.services.catalog.redeem_invitation(token, "Olive OpenAI")
    return {"id": created.id, "key": key}


def course_model(course_id: str) -> str:
    return f"chronos-course-{course_id}"


def ledger_usage(world: World, message_id: str) -> dict[str, Any]:
    _, rows = world.services.ledger.query(
        "SELECT stage, unit, sum(quantity), sum(cost_usd), count(DISTINCT student_id), "
        "any_value(student_id) FROM cost_records WHERE message_id = ? GROUP BY ALL",
        [message_id])
    prompt = sum(q for _, unit, q, *_ in rows if unit != "output_token")
    completion = sum(q for _, unit, q, *_ in rows if unit == "output_token")
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "stages": {stage for stage, *_ in rows},
            "cost_usd": sum((c for *_, c, _, _ in rows), Decimal(0)),
            "student_ids": {s for *_, s in rows}}


def test_the_sdk_gets_an_answer_with_cited_moments_in_text_and_as_structured_citations(
    world: World, base_url: str
) -> None:
    client = sdk(base_url, world.api_key)
    completion = client.chat.completions.create(
        model=course_model(world.course_id), temperature=0.2, max_tokens=300,
        messages=[{"role": "system", "content": "Answer from the lectures."},
                  {"role": "user", "content": QUESTION}])
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    text = choice.message.content or ""
    assert "Sources:" in text and SOURCE_LINE.search(text)
    citations = choice.message.model_extra["citations"]  # type: ignore[index]
    assert citations == choice.message.citations  # type: ignore[attr-defined]
    assert set(citations[0]) == {"video_id", "title", "start_s", "end_s", "timestamp", "url",
                                 "text", "verified", "note"}
    # The local answerer quotes the cited sentences themselves.
    assert all(c["verified"] and c["note"] == "" for c in citations)
    assert {c["video_id"] for c in citations} == {world.video_id}
    assert any(c["start_s"] - TOLERANCE_S <= RSI_AT_S <= c["end_s"] + TOLERANCE_S
               for c in citations)
    for citation in citations:
        assert f"[{citation['timestamp']}] {citation['title']}" in text
        assert citation["url"] == (f"{base_url}/app/lectures/{world.video_id}"
                                   f"?t={int(citation['start_s'])}")


def test_earlier_turns_make_a_follow_up_find_the_moment_they_lead_to(
    world: World, base_url: str
) -> None:
    completion = sdk(base_url, world.api_key).chat.completions.create(
        model="chronos-all",
        messages=[{"role": "user",
                   "content": "Below what RSI number would a stock be considered oversold?"},
                  {"role": "assistant", "content": "Below thirty, RSI reads as oversold."},
                  {"role": "user", "content": "Does that mean I should buy immediately?"}])
    citations = completion.choices[0].message.model_extra["citations"]  # type: ignore[index]
    # "Those levels are not automatic buy or sell orders." (141.9 s)
    assert any(c["start_s"] - TOLERANCE_S <= 141.9 <= c["end_s"] + TOLERANCE_S
               for c in citations[:3])


def test_a_streamed_answer_assembles_to_the_same_text_and_ends_with_usage(
    world: World, base_url: str
) -> None:
    client = sdk(base_url, world.api_key)
    model = course_model(world.course_id)
    whole = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": QUESTION}])
    stream = client.chat.completions.create(
        model=model, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}]}])
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    carrying = [c for c in chunks if (c.model_extra or {}).get("citations")]
    assert len(carrying) == 1
    assert carrying[0].model_extra["citations"] == \
        whole.choices[0].message.citations  # type: ignore[attr-defined, index]
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id != whole.id
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens > 0


def test_usage_equals_the_ledger_records_of_that_request(world: World, base_url: str) -> None:
    client = sdk(base_url, world.api_key)
    completion = client.chat.completions.create(
        model="chronos-all", messages=[{"role": "user", "content": "What is a death cross?"}])
    message_id = completion.id.removeprefix("chatcmpl-")
    ledger = ledger_usage(world, message_id)
    usage = completion.usage
    assert usage is not None and ledger["stages"] == {"query-embed", "chat"}
    assert usage.prompt_tokens == ledger["prompt_tokens"] > 0
    assert usage.completion_tokens == ledger["completion_tokens"] > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.model_extra == {"cost_usd": float(ledger["cost_usd"])}

    stream = client.chat.completions.create(
        model="chronos-all", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "What is a golden cross?"}])
    chunks = list(stream)
    streamed = chunks[-1].usage
    ledger = ledger_usage(world, chunks[0].id.removeprefix("chatcmpl-"))
    assert streamed is not None
    assert (streamed.prompt_tokens, streamed.completion_tokens) == \
        (ledger["prompt_tokens"], ledger["completion_tokens"])


def test_a_stream_without_include_usage_has_no_usage_chunk(
    world: World, base_url: str
) -> None:
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", timeout=120,
                      headers={"Authorization": f"Bearer {world.api_key}"},
                      json={"model": "chronos-all", "stream": True,
                            "messages": [{"role": "user", "content": "What is RSI?"}]}
                      ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert not any('"usage"' in line for line in lines)


def test_a_student_sees_only_enrolled_courses_and_no_cost(
    world: World, base_url: str, student: dict[str, str]
) -> None:
    other = world.services.catalog.create_course(world.creator_id, "Not enrolled")
    client = sdk(base_url, student["key"])
    models = [m.id for m in client.models.list()]
    assert models == ["chronos-all", course_model(world.course_id)]
    creator_models = [m.id for m in sdk(base_url, world.api_key).models.list()]
    assert course_model(other.id) in creator_models

    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model=course_model(other.id),
                                       messages=[{"role": "user", "content": "What is RSI?"}])
    assert refused.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(course_model(other.id))
    assert client.models.retrieve(course_model(world.course_id)).owned_by == "chronos"

    completion = client.chat.completions.create(
        model="chronos-all", messages=[{"role": "user", "content": "What is RSI?"}])
    assert completion.choices[0].message.citations  # type: ignore[attr-defined]
    assert completion.usage is not None and completion.usage.model_extra == {}
    ledger = ledger_usage(world, completion.id.removeprefix("chatcmpl-"))
    assert ledger["student_ids"] == {student["id"]}
    assert completion.usage.prompt_tokens == ledger["prompt_tokens"]


def test_a_bad_key_is_an_authentication_error_in_openais_shape(
    world: World, base_url: str
) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk(base_url, "chr_not_a_key").chat.completions.create(
            model="chronos-all", messages=[{"role": "user", "content": "What is RSI?"}])
    assert refused.value.status_code == 401
    assert refused.value.body == {"message": "invalid API key", "type": "authentication_error",
                                  "param": None, "code": "invalid_api_key"}
    with pytest.raises(openai.AuthenticationError):
        sdk(base_url, "chr_not_a_key").models.list()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": "chronos-all", "n": 2,
          "messages": [{"role": "user", "content": "What is RSI?"}]}, 400, "n=1"),
        ({"model": "chronos-all", "messages": []}, 400, "empty"),
        ({"model": "chronos-all", "messages": [{"role": "system", "content": "Hi"}]}, 400,
         "no user message"),
        ({"model": "chronos-all", "messages": [{"role": "user", "content": "   "}]}, 400,
         "empty"),
        ({"model": "chronos-all"}, 400, "messages"),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}, 404,
         "does not exist"),
        ({"model": "chronos-course-co_0000000000000000",
          "messages": [{"role": "user", "content": "Hi"}]}, 404, "does not exist"),
    ],
    ids=["n-2", "no-messages", "no-user-message", "blank-question", "malformed",
         "foreign-model", "unknown-course"],
)
def test_bad_requests_get_openai_errors_and_spend_nothing(
    world: World, body: dict[str, Any], status: int, says: str
) -> None:
    before = world.services.ledger.query("SELECT count(*) FROM cost_records")[1][0][0]
    response = world.client.post("/v1/chat/completions", json=body, headers=world.headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and says in error["message"]
    assert world.services.ledger.query("SELECT count(*) FROM cost_records")[1][0][0] == before


def test_a_creator_past_the_hard_limit_gets_402_in_openais_shape(
    services: Services, creator: tuple[str, str]
) -> None:
    creator_id, key = creator
    services.catalog.set_budget(creator_id, Decimal("0.000001"))
    paid = Usage("anthropic", "claude-haiku-4-5", {"input_token": 1000, "output_token": 100})
    services.ledger.record(paid, creator_id=creator_id, stage="chat")
    with TestClient(create_app(services=services)) as client:
        response = client.post(
            "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
            json={"model": "chronos-all", "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "budget_exceeded")


def test_the_rest_of_the_api_keeps_its_own_error_shape(world: World) -> None:
    response = world.client.get("/videos", headers={"Authorization": "Bearer chr_nope"})
    assert response.status_code == 401 and response.json()["error"] == "AuthenticationError"

