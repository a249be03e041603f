"""What a fuzzer sent the student-facing API and got a 500, a wrong-shaped error, or a silent
acceptance for: each is now a 4xx in the route's one error format, and spends nothing.

Under ``/v1`` that format is OpenAI's, ``{"error": {"message", "type", "param", "code"}}``,
so an OpenAI SDK raises ``BadRequestError`` (or ``NotFoundError``) with the field named.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chronos_api.controllers.openai_compat import sse_body
from chronos_pipeline.lib import ids
from chronos_pipeline.lib.openai_wire import CompletionWriter
from tests.conftest import World

ASK = [{"role": "user", "content": "What is RSI?"}]
NESTED = b'{"model": "chronos-all", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def spent(world: World) -> int:
    return int(world.services.ledger.query("SELECT count(*) FROM cost_records")[1][0][0])


def openai_error(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        # Litestar converted these leniently and answered (a string "true" streamed).
        ({"stream": "true"}, "stream", "Expected `bool`, got `str`"),
        ({"stream": 1}, "stream", "Expected `bool`, got `int`"),
        ({"n": "1"}, "n", "Expected `int | null`, got `str`"),
        ({"stream": True, "stream_options": {"include_usage": "yes"}},
         "stream_options.include_usage", "Expected `bool`, got `str`"),
        # Out of OpenAI's ranges: OpenAI refuses them, so a client must learn it here too.
        ({"temperature": 2.5}, "temperature", "<= 2.0"),
        ({"temperature": -0.1}, "temperature", ">= 0.0"),
        ({"top_p": 1.5}, "top_p", "<= 1.0"),
        ({"max_tokens": 0}, "max_tokens", ">= 1"),
    ],
    ids=["stream-string", "stream-number", "n-string", "include-usage-string",
         "temperature-high", "temperature-negative", "top-p-high", "max-tokens-zero"],
)
def test_a_wrongly_typed_or_out_of_range_field_is_400_naming_it(
    world: World, body: dict[str, Any], param: str, says: str
) -> None:
    before = spent(world)
    response = world.client.post("/v1/chat/completions", headers=world.headers,
                                 json={"model": "chronos-all", "messages": ASK, **body})
    assert response.status_code == 400
    error = openai_error(response)
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert says in error["message"] and param in error["message"]
    assert spent(world) == before


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat", "/chat/answer"])
@pytest.mark.parametrize(
    ("raw", "says"),
    [(b'{"model": "chronos-all", "question": "\xff\xfe"}', "not UTF-8"),
     (NESTED, "nests too deeply")],
    ids=["not-utf8", "nested-too-deep"],
)
def test_a_body_that_does_not_decode_is_400_not_500(
    world: World, path: str, raw: bytes, says: str
) -> None:
    response = world.client.post(path, content=raw, headers={
        **world.headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    message = (openai_error(response)["message"] if path.startswith("/v1")
               else response.json()["detail"])
    assert says in message


@pytest.mark.parametrize(("path", "status"), [("/v1/chat/completions", 400), ("/chat", 422)])
def test_an_empty_body_says_a_json_object_is_expected(
    world: World, path: str, status: int
) -> None:
    response = world.client.post(path, content=b"", headers={
        **world.headers, "Content-Type": "application/json"})
    assert response.status_code == status
    assert "Expected `object`, got `null`" in response.text


@pytest.mark.parametrize(("method", "path", "status"), [
    ("POST", "/v1/embeddings", 404), ("GET", "/v1/models/a/b", 404),
    ("GET", "/v1/chat/completions", 405), ("DELETE", "/v1/models", 405),
])
def test_a_path_or_method_v1_lacks_answers_in_openais_shape(
    world: World, method: str, path: str, status: int
) -> None:
    response = world.client.request(method, path, headers=world.headers)
    assert response.status_code == status
    assert path in openai_error(response)["message"]


def test_a_student_deleted_while_answered_ends_the_stream_with_a_not_found_error(
    world: World
) -> None:
    catalog = world.services.catalog
    _invitation, token = catalog.create_invitation(world.creator_id, world.course_id)
    student, key = catalog.redeem_invitation(token, "Gone Midway")
    principal = catalog.authenticate_key(key)
    writer = CompletionWriter(message_id=ids.new_id("message"), model="chronos-all",
                              base_url="http://testserver", show_cost=False)
    chunks = sse_body(writer, world.services.answering, principal, "What is RSI?", None,
                      False, [])
    started = [next(chunks), next(chunks)]  # the role, then the answer's first words
    assert b'"content":"' in started[1]
    catalog.delete_student(world.creator_id, student.id)
    rest = list(chunks)
    # Not an "internal error" from a foreign-key failure: the session is gone, and says so.
    error = json.loads(rest[-1].removeprefix(b"data: "))["error"]
    assert error["type"] == "invalid_request_error"
    assert "it was deleted" in error["message"]
    # What the answer spent before the deletion stays on the creator's ledger.
    _, rows = world.services.ledger.query(
        "SELECT count(*) FROM cost_records WHERE message_id = ?",
        [writer.id.removeprefix("chatcmpl-")])
    assert rows[0][0] > 0
