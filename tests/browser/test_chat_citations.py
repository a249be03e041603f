"""The web chat shows a generative model's unchecked citations as such: a claim whose cited
sentence does not support it, or a time the model was not given, gets the "unverified"
badge; a supported claim gets the ordinary link to its sentence.

The model is the real ``openai`` SDK (``CHRONOS_CHAT_MODEL=openai-compatible``) against the
loopback server, playing a model that cites right and wrong; the page is Debian's Chromium
against a real ``chronos serve`` holding a copy of the ready sample lecture.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import shot
from tests.conftest import World, copy_data_dir
from tests.loopback import Loopback, loopback
from tests.servers import free_port, running

# The sample lecture's sentence on RSI's inventor (samples/lecture/timeline.json); Whisper
# hears "Welles Wilder in nineteen seventy eight" as "while they're in 1978".
INTRODUCED = "introduced by the technical analyst"
INTRODUCED_AT_S = 112.6
SUPPORTED = "RSI was introduced by a technical analyst in 1978"
UNSUPPORTED = "Photosynthesis turns sunlight into sugar in the chloroplasts"
NOT_GIVEN = "RSI was first used on the Moon"


def excerpts(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(mm:ss, text)`` of each excerpt in an OpenAI-style chat request."""
    prompt = str(body["messages"][-1]["content"])
    block = prompt.split("Lecture excerpts:\n\n", 1)[1].rsplit("\n\nQuestion:", 1)[0]
    return [(excerpt[1:6], excerpt) for excerpt in block.split("\n\n")]


def model(body: dict[str, Any]) -> str:
    """Cites the right excerpt for the inventor, another excerpt for a claim no lecture
    makes, and a time it was not given; names the session when asked for a title."""
    if not body.get("stream"):
        return "Who invented RSI"
    given = excerpts(body)
    right = next(at for at, text in given if INTRODUCED in text.lower())
    other = next(at for at, _ in given if at != right)
    return (f"{SUPPORTED} [{right}]. {UNSUPPORTED} [{other}]. {NOT_GIVEN} [59:59].")


@pytest.fixture(scope="module")
def served(world: World, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Loopback]]:
    """``chronos serve`` on a copy of the ready sample library, chatting through the loopback
    server's OpenAI-compatible endpoint."""
    data_dir = tmp_path_factory.mktemp("cited") / "data"
    copy_data_dir(world.settings.data_dir, data_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "chronos_pipeline.cli", "serve", "--no-pipeline",
               "--port", str(port)]
    with loopback() as server:
        server.responder = model
        env = {"CHRONOS_DATA_DIR": str(data_dir),
               "CHRONOS_CHAT_MODEL": "openai-compatible",
               "CHRONOS_CHAT_BASE_URL": f"{server.base_url}/v1",
               "CHRONOS_CHAT_MODEL_NAME": "llama3.2",
               "CHRONOS_PROVIDER_MAX_RETRIES": "0"}
        with running(command, env, f"{base}/health"):
            yield base, server


def badges(page: Any) -> list[dict[str, str]]:
    """Each reference badge of the last answer: its text, classes, tooltip and border."""
    return list(page.evaluate(
        """() => [...document.querySelectorAll('#messages .msg.assistant:last-child .ref')]
            .map((b) => ({text: b.textContent, cls: b.className, tag: b.tagName,
                          tip: b.title || '', href: b.getAttribute('href') || '',
                          border: getComputedStyle(b).borderTopStyle}))"""))


def check(found: list[dict[str, str]]) -> None:
    verified = [b for b in found if "unverified" not in b["cls"].split()]
    flagged = [b for b in found if "unverified" in b["cls"].split()]
    assert len(verified) == 1, found
    assert "unverified" not in verified[0]["text"] and verified[0]["border"] != "dashed"
    assert abs(float(verified[0]["href"].split("t=")[1]) - INTRODUCED_AT_S) < 2.0
    assert SUPPORTED not in " ".join(b["tip"] for b in flagged)
    tips = {b["tip"].split(": “")[1].rstrip("”"): b for b in flagged}
    assert set(tips) == {f"{UNSUPPORTED}.", f"{NOT_GIVEN}."}, found
    for badge in flagged:
        assert badge["text"].startswith("unverified · ") and badge["border"] == "dashed"
    # The unsupported claim still links to the sentence it cited; the invented time cannot.
    unsupported, not_given = tips[f"{UNSUPPORTED}."], tips[f"{NOT_GIVEN}."]
    assert "does not support" in unsupported["tip"] and unsupported["tag"] == "A"
    assert "not among the excerpts" in not_given["tip"] and not_given["tag"] == "SPAN"
    assert not_given["text"] == "unverified · 59:59"


def test_an_unverified_citation_gets_the_unverified_badge_and_a_verified_one_does_not(
    world: World, served: tuple[str, Loopback], chromium: Any
) -> None:
    base, server = served
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/signin")
    page.fill("#api_key", world.api_key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/app")
    page.goto(f"{base}/app/chat?course_id={world.course_id}")
    page.fill("#question", "Who invented RSI?")
    page.click("#chat-form button[type=submit]")
    page.wait_for_selector("#messages .msg.assistant .ref", timeout=60_000)
    page.wait_for_function("!document.querySelector('#messages .msg.assistant[aria-busy]')")
    assert "failed" not in (page.get_attribute("#messages .msg.assistant", "class") or "")
    asked = [body for path, body in server.requests
             if path == "/v1/chat/completions" and body.get("stream")]
    assert len(asked) == 1 and any(INTRODUCED in text.lower() for _, text in excerpts(asked[0]))
    shot(page, "13-chat-unverified-citations")
    # As streamed ...
    check(badges(page))
    # ... and as the saved session shows it again.
    page.wait_for_url(f"{base}/app/chat/*")
    page.reload()
    page.wait_for_selector("#messages .msg.assistant .ref")
    check(badges(page))
    context.close()
