"""``chronos serve`` alone takes an upload to ``ready``: its pipeline worker runs it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from chronos_pipeline.lib.services import Services
from tests.conftest import SAMPLE_MP4, make_settings
from tests.servers import free_port, running


def test_an_upload_to_the_served_api_gets_ready_with_nothing_else_running(
    tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    services = Services(make_settings(data_dir))
    _creator, api_key = services.catalog.create_creator("Served creator")
    services.close()
    headers = {"Authorization": f"Bearer {api_key}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "chronos_pipeline.cli", "serve", "--port", str(port)]
    with running(command, {"CHRONOS_DATA_DIR": str(data_dir)}, f"{base}/health"):
        response = httpx.post(f"{base}/videos/upload", params={"title": "Momentum"},
                              content=SAMPLE_MP4.read_bytes(), headers=headers, timeout=60)
        assert response.status_code == 201, response.text
        video_id = response.json()["id"]
        seen = []
        deadline = time.monotonic() + 180
        while True:
            status = httpx.get(f"{base}/videos/{video_id}", headers=headers,
                               timeout=10).json()["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status in ("ready", "failed") or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    assert seen[-1] == "ready", seen
    assert "transcribing" in seen or "embedding" in seen
