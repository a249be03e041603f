"""A class asking at once: every chat stream of a served API ends in ``done`` or ``error``."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.api.test_chat import parse_sse
from tests.conftest import World, copy_data_dir
from tests.servers import free_port, running

CLIENTS = 30
STREAM_TIMEOUT_S = 180.0


def _ask(base: str, headers: dict[str, str], question: str,
         start: threading.Barrier) -> tuple[int, list[tuple[str, Any]]]:
    start.wait(timeout=60)
    with httpx.stream("POST", f"{base}/chat", json={"question": question}, headers=headers,
                      timeout=STREAM_TIMEOUT_S) as response:
        body = "".join(response.iter_text())
    return response.status_code, parse_sse(body) if response.status_code == 200 else []


def test_thirty_concurrent_chats_on_a_served_api_each_end_in_done_or_error_and_none_5xx(
    world: World, sample_questions: list[dict[str, Any]], tmp_path: Path
) -> None:
    # A copy of the ready sample library, so the other tests' data stays as they left it.
    data_dir = tmp_path / "data"
    copy_data_dir(world.settings.data_dir, data_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "chronos_pipeline.cli", "serve", "--no-pipeline",
               "--port", str(port)]
    questions = [sample_questions[i % len(sample_questions)]["question"]
                 for i in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)
    with (running(command, {"CHRONOS_DATA_DIR": str(data_dir)}, f"{base}/health"),
          ThreadPoolExecutor(max_workers=CLIENTS) as pool):
        results = list(pool.map(lambda q: _ask(base, world.headers, q, start), questions))

    statuses = [status for status, _ in results]
    assert all(status < 500 for status in statuses), statuses
    assert statuses == [200] * CLIENTS
    endings = [events[-1][0] if events else "no event" for _, events in results]
    assert all(ending in ("done", "error") for ending in endings), endings
    for _, events in results:
        if events[-1][0] == "error":
            assert events[-1][1]["error"] and events[-1][1]["detail"]
        else:
            names = [name for name, _ in events]
            assert names[0] == "answer" and "references" in names
