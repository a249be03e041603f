"""The real API server: `chronos serve` with several workers that agree on all state."""

from __future__ import annotations

import sys

import httpx

from tests.conftest import World
from tests.servers import free_port, running


def test_served_api_with_two_workers_answers_from_the_shared_state(world: World) -> None:
    port = free_port()
    command = [sys.executable, "-m", "chronos_pipeline.cli", "serve", "--port", str(port),
               "--workers", "2"]
    env = {"CHRONOS_DATA_DIR": str(world.settings.data_dir)}
    base = f"http://127.0.0.1:{port}"
    with running(command, env, f"{base}/health"):
        schema = httpx.get(f"{base}/schema/openapi.json", timeout=10).json()
        assert schema["info"]["title"] == "Chronos API"
        statuses = {
            httpx.get(f"{base}/videos/{world.video_id}", headers=world.headers,
                      timeout=10).json()["status"]
            for _ in range(6)
        }
        assert statuses == {"ready"}
        assert httpx.get(f"{base}/videos", timeout=10).status_code == 401
        with httpx.stream("POST", f"{base}/chat", headers=world.headers, timeout=60,
                          json={"question": "What is a golden cross?"}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            body = "".join(response.iter_text())
        assert "event: references" in body and "event: done" in body
