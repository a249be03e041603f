"""A real ``chronos serve`` (with its pipeline worker) and Debian's Chromium via Playwright.

Screenshots of every page go to ``$CHRONOS_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chronos_pipeline.lib.services import Services
from tests.conftest import REPO, make_settings
from tests.servers import free_port, running

UPLOAD_CHUNK = 256 * 1024
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("CHRONOS_TEST_ARTIFACTS", REPO / "test-artifacts"))
# Chromium's own network chatter is refused on this machine: keep it quiet and offline.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic", "--autoplay-policy=no-user-gesture-required"]


@dataclass
class App:
    base: str
    data_dir: Path
    services: Services
    creator_id: str
    api_key: str


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    services = Services(make_settings(data_dir))
    creator, api_key = services.catalog.create_creator("Browser creator")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "chronos_pipeline.cli", "serve", "--port", str(port)]
    # 256 KiB upload requests: the 1.4 MB sample goes in six, so one can be cut mid-way.
    env = {"CHRONOS_DATA_DIR": str(data_dir), "CHRONOS_UPLOAD_CHUNK_BYTES": str(UPLOAD_CHUNK)}
    with running(command, env, f"{base}/health"):
        yield App(base, data_dir, services, creator.id, api_key)
    services.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's Chromium is missing at {CHROMIUM}: run `make install`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
