"""The lecture page's media over HTTP: seeking in the video, caption and transcript files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.lib.playback import PLAYBACK
from chronos_pipeline.lib.services import Services
from tests.conftest import SAMPLE_MP4, World, make_settings

Client = TestClient[Any]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Client, Services]]:
    services = Services(make_settings(tmp_path / "data"))
    with TestClient(create_app(services=services)) as client:
        yield client, services
    services.close()


def _auth(services: Services, name: str) -> dict[str, str]:
    _, key = services.catalog.create_creator(name)
    return {"Authorization": f"Bearer {key}"}


def _playback(world: World) -> bytes:
    path = world.services.storage.video_dir(world.creator_id, world.video_id) / PLAYBACK
    assert path.is_file(), "the ingest job makes playback.mp4"
    return path.read_bytes()


def _media(world: World, **headers: str) -> Any:
    return world.client.get(f"/videos/{world.video_id}/media",
                            headers={**world.headers, **headers})


@pytest.mark.slow
def test_a_range_is_206_with_exactly_those_bytes(world: World) -> None:
    data = _playback(world)
    response = _media(world, Range="bytes=1000-1999")
    assert response.status_code == 206
    assert response.content == data[1000:2000]
    assert response.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert response.headers["content-length"] == "1000"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "video/mp4"


@pytest.mark.slow
def test_open_ended_and_suffix_ranges_as_a_player_seeks(world: World) -> None:
    data = _playback(world)
    middle = len(data) // 2
    tail = _media(world, Range=f"bytes={middle}-")
    assert tail.status_code == 206 and tail.content == data[middle:]
    assert tail.headers["content-range"] == f"bytes {middle}-{len(data) - 1}/{len(data)}"
    last = _media(world, Range="bytes=-500")
    assert last.status_code == 206 and last.content == data[-500:]


@pytest.mark.slow
def test_no_range_or_several_ranges_send_the_whole_file(world: World) -> None:
    data = _playback(world)
    for response in (_media(world), _media(world, Range="bytes=0-10,20-30")):
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["content-length"] == str(len(data))


@pytest.mark.slow
def test_a_range_past_the_end_is_416_with_the_size(world: World) -> None:
    size = len(_playback(world))
    response = _media(world, Range=f"bytes={size}-")
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"


@pytest.mark.slow
def test_head_describes_the_video_without_sending_it(world: World) -> None:
    size = len(_playback(world))
    response = world.client.head(f"/videos/{world.video_id}/media", headers=world.headers)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(size)
    assert response.headers["accept-ranges"] == "bytes"
    ranged = world.client.head(f"/videos/{world.video_id}/media",
                               headers={**world.headers, "Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.headers["content-length"] == "100"


@pytest.mark.slow
def test_vtt_is_served_inline_for_the_players_track(world: World) -> None:
    response = world.client.get(f"/videos/{world.video_id}/transcript/vtt",
                                params={"inline": "1"}, headers=world.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/vtt; charset=utf-8"
    assert response.headers["content-disposition"].startswith("inline")
    assert response.text.startswith("WEBVTT\n\n")
    timings = re.findall(r"^(\d{2}:\d{2}:\d{2}\.\d{3}) --> (\d{2}:\d{2}:\d{2}\.\d{3})$",
                         response.text, flags=re.M)
    assert len(timings) > 20 and all(a < b for a, b in timings)
    assert "moving average" in " ".join(response.text.split()).lower()


@pytest.mark.slow
def test_transcript_downloads_are_attachments_named_after_the_lecture(world: World) -> None:
    expected = {
        "srt": ("application/x-subrip", "1\n00:00:"),
        "txt": ("text/plain; charset=utf-8", "[00:"),
        "json": ("application/json", "{"),
    }
    for fmt, (media_type, start) in expected.items():
        response = world.client.get(f"/videos/{world.video_id}/transcript/{fmt}",
                                    headers=world.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(media_type)
        assert response.headers["content-disposition"] == (
            f'attachment; filename="Momentum indicators.{fmt}"')
        assert response.text.startswith(start)
    unknown = world.client.get(f"/videos/{world.video_id}/transcript/docx",
                               headers=world.headers)
    assert unknown.status_code == 404 and "srt, vtt, txt, json" in unknown.json()["detail"]


@pytest.mark.slow
def test_another_creators_video_is_404(world: World) -> None:
    _, key = world.services.catalog.create_creator("Someone else")
    other = {"Authorization": f"Bearer {key}"}
    for path in ("media", "transcript/vtt"):
        response = world.client.get(f"/videos/{world.video_id}/{path}", headers=other)
        assert response.status_code == 404, path
    assert world.client.get(f"/videos/{world.video_id}/media").status_code == 401


def test_before_processing_the_upload_itself_is_served_and_transcripts_are_409(
    api: tuple[Client, Services],
) -> None:
    client, services = api
    headers = _auth(services, "Ada")
    created = client.post("/videos", json={"title": "Not yet"}, headers=headers).json()
    waiting = client.get(f"/videos/{created['id']}/media", headers=headers)
    assert waiting.status_code == 409 and "no uploaded file yet" in waiting.json()["detail"]

    video = client.post("/videos/upload", params={"title": "Fresh"},
                        content=SAMPLE_MP4.read_bytes(), headers=headers).json()
    source = SAMPLE_MP4.read_bytes()
    response = client.get(f"/videos/{video['id']}/media", headers={**headers,
                                                                   "Range": "bytes=0-7"})
    assert response.status_code == 206 and response.content == source[:8]
    assert response.headers["content-range"] == f"bytes 0-7/{len(source)}"
    transcript = client.get(f"/videos/{video['id']}/transcript/srt", headers=headers)
    assert transcript.status_code == 409
    assert "no transcript yet" in transcript.json()["detail"]
