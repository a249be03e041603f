"""Uploads over HTTP: bad input is refused with a reason and leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.lib.services import Services
from tests.conftest import SAMPLE_MP4, make_settings
from tests.media import faststart_copy, make_video, truncated_copy

Client = TestClient[Any]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Client, Services]]:
    services = Services(make_settings(tmp_path / "data", upload_max_bytes=3 * 1024 * 1024))
    with TestClient(create_app(services=services)) as client:
        yield client, services
    services.close()


def _auth(services: Services, name: str = "Ada") -> tuple[str, dict[str, str]]:
    creator, key = services.catalog.create_creator(name)
    return creator.id, {"Authorization": f"Bearer {key}"}


def _nothing_left(services: Services, creator_id: str) -> None:
    assert services.catalog.list_videos(creator_id, include_unlisted=True) == []
    storage = services.storage
    assert not any(storage.videos_root.glob(f"{creator_id}/*/*"))
    assert not any(storage.uploads_root.glob("*")) if storage.uploads_root.exists() else True
    _, rows = services.ledger.query("SELECT count(*) FROM cost_records")
    assert rows == [(0,)]


def test_sample_upload_is_stored_and_registered(api: tuple[Client, Services]) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    response = client.post("/videos/upload", params={"title": "Lecture 1"},
                           content=SAMPLE_MP4.read_bytes(), headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "uploaded" and body["duration_s"] == pytest.approx(199, abs=1)
    folder = services.storage.video_dir(creator_id, body["id"])
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "source.mp4"]
    assert (folder / "source.mp4").read_bytes() == SAMPLE_MP4.read_bytes()


def test_three_step_upload_create_put_confirm(api: tuple[Client, Services]) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    created = client.post("/videos", json={"title": "Lecture 2"}, headers=headers)
    assert created.status_code == 201 and created.json()["status"] == "awaiting_upload"
    video_id = created.json()["id"]
    put = client.put(f"/videos/{video_id}/content", content=SAMPLE_MP4.read_bytes(),
                     headers=headers)
    assert put.status_code == 200 and put.json()["status"] == "awaiting_upload"
    folder = services.storage.video_dir(creator_id, video_id)
    assert not (folder / "manifest.json").exists()  # the sensor cannot see it yet
    confirmed = client.post(f"/videos/{video_id}/confirm", headers=headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "uploaded"
    assert (folder / "manifest.json").exists()
    again = client.post(f"/videos/{video_id}/confirm", headers=headers)
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda d: (d / "notes.mp4").write_text("lecture notes\n" * 100) and d / "notes.mp4",
         415, "not a video we can read"),
        (lambda d: truncated_copy(faststart_copy(SAMPLE_MP4, d / "fs.mp4"), d / "cut.mp4"),
         415, "truncated"),
        (lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4", 422, "empty"),
        (lambda d: make_video(d / "mute.mp4", audio=None), 415, "no audio track"),
    ],
    ids=["text-file-named-mp4", "truncated-mp4", "empty-file", "no-audio-stream"],
)
def test_bad_upload_is_refused_with_a_reason_and_leaves_nothing(
    api: tuple[Client, Services], tmp_path: Path, make: Any, status: int, reason: str
) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    path = make(tmp_path)
    response = client.post("/videos/upload", params={"title": "Bad"},
                           content=Path(path).read_bytes(), headers=headers)
    assert response.status_code == status, response.text
    assert reason in response.json()["detail"]
    _nothing_left(services, creator_id)


def test_upload_of_a_46_ms_clip_is_refused_as_too_short_and_leaves_nothing(
    api: tuple[Client, Services], tmp_path: Path
) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    clip = make_video(tmp_path / "blip.mp4", seconds=0.046)
    response = client.post("/videos/upload", params={"title": "Blip"},
                           content=clip.read_bytes(), headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "the video is 0.05 s long; lectures must be at least 1 s")
    _nothing_left(services, creator_id)


def test_upload_over_the_cap_is_refused_and_leaves_nothing(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    big = b"\0" * (3 * 1024 * 1024 + 1)
    response = client.post("/videos/upload", params={"title": "Huge"}, content=big,
                           headers=headers)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    _nothing_left(services, creator_id)


def test_upload_over_the_cap_without_a_length_is_cut_off_while_streaming(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    creator_id, headers = _auth(services)

    def body() -> Iterator[bytes]:
        for _ in range(8):
            yield b"\0" * (512 * 1024)

    response = client.post("/videos/upload", params={"title": "Huge"}, content=body(),
                           headers=headers)
    assert response.status_code == 413
    _nothing_left(services, creator_id)


def test_wrong_or_missing_api_key_is_401(api: tuple[Client, Services]) -> None:
    client, services = api
    _auth(services)
    assert client.get("/videos").status_code == 401
    wrong = client.get("/videos", headers={"Authorization": "Bearer chr_wrong"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid API key"
    upload = client.post("/videos/upload", params={"title": "x"}, content=b"abc",
                         headers={"Authorization": "Bearer chr_wrong"})
    assert upload.status_code == 401


def test_another_creators_video_is_404_for_every_route(api: tuple[Client, Services]) -> None:
    client, services = api
    _, ada = _auth(services, "Ada")
    _, bob = _auth(services, "Bob")
    video_id = client.post("/videos", json={"title": "Ada's"}, headers=ada).json()["id"]
    assert client.get(f"/videos/{video_id}", headers=bob).status_code == 404
    assert client.put(f"/videos/{video_id}/content", content=SAMPLE_MP4.read_bytes(),
                      headers=bob).status_code == 404
    assert client.post(f"/videos/{video_id}/confirm", headers=bob).status_code == 404
    assert client.get(f"/videos/{video_id}/transcript", headers=bob).status_code == 404
    assert client.get("/videos", headers=bob).json() == []
    assert client.get(f"/videos/{video_id}", headers=ada).json()["status"] == "awaiting_upload"


def test_unknown_course_is_refused_and_creates_nothing(api: tuple[Client, Services]) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    response = client.post("/videos/upload",
                           params={"title": "x", "course_id": "co_0000000000000000"},
                           content=SAMPLE_MP4.read_bytes(), headers=headers)
    assert response.status_code == 404 and "unknown course" in response.json()["detail"]
    _nothing_left(services, creator_id)
    course = client.post("/courses", json={"name": "Trading 101"}, headers=headers).json()
    ok = client.post("/videos/upload", params={"title": "x", "course_id": course["id"]},
                     content=SAMPLE_MP4.read_bytes(), headers=headers)
    assert ok.status_code == 201 and ok.json()["course_id"] == course["id"]


def test_malformed_requests_are_422(api: tuple[Client, Services]) -> None:
    client, services = api
    _, headers = _auth(services)
    assert client.post("/videos", json={"nope": 1}, headers=headers).status_code == 422
    assert client.post("/videos", json={"title": "  "}, headers=headers).status_code == 422
    assert client.get("/videos/not-an-id", headers=headers).status_code == 422


def test_openapi_schema_is_served(api: tuple[Client, Services]) -> None:
    client, _ = api
    schema = client.get("/schema/openapi.json").json()
    assert {"/videos/upload", "/chat", "/chat/answer", "/usage"} <= set(schema["paths"])


def test_transcript_of_an_unprocessed_video_is_a_409_not_a_crash(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    _, headers = _auth(services)
    video = client.post("/videos/upload", params={"title": "Fresh"},
                        content=SAMPLE_MP4.read_bytes(), headers=headers).json()
    response = client.get(f"/videos/{video['id']}/transcript", headers=headers)
    assert response.status_code == 409 and "no transcript yet" in response.json()["detail"]
    assert client.get(f"/videos/{video['id']}/thumbnail", headers=headers).status_code == 409
