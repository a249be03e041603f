"""Resumable uploads: a cut upload resumes from the server's offset; abandoned ones vanish."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.cli import main as chronos
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from tests.conftest import SAMPLE_MP4, make_settings
from tests.servers import free_port, running

Client = TestClient[Any]
CAP = 3 * 1024 * 1024
SAMPLE = SAMPLE_MP4.read_bytes()
HALF = len(SAMPLE) // 2


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Client, Services]]:
    services = Services(make_settings(tmp_path / "data", upload_max_bytes=CAP))
    with TestClient(create_app(services=services)) as client:
        yield client, services
    services.close()


def _auth(services: Services) -> tuple[str, dict[str, str]]:
    creator, key = services.catalog.create_creator("Ada")
    return creator.id, {"Authorization": f"Bearer {key}"}


def _new_video(client: Client, headers: dict[str, str]) -> str:
    response = client.post("/videos", json={"title": "Lecture 1"}, headers=headers)
    assert response.status_code == 201, response.text
    video_id: str = response.json()["id"]
    return video_id


def _put_range(client: Client, headers: dict[str, str], video_id: str, data: bytes,
               start: int, total: int, *, declared: int | None = None) -> httpx.Response:
    end = start + (len(data) if declared is None else declared) - 1
    return client.put(f"/videos/{video_id}/content", content=data,
                      headers={**headers, "Content-Range": f"bytes {start}-{end}/{total}"})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _upload_files(services: Services) -> list[str]:
    root = services.storage.uploads_root
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_upload_cut_at_half_resumes_from_the_servers_offset_to_an_identical_file(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    video_id = _new_video(client, headers)

    def first_half_then_the_connection_drops() -> Iterator[bytes]:
        yield SAMPLE[:HALF]

    # The range announces the whole file but only half arrives: the half is kept.
    cut = client.put(f"/videos/{video_id}/content", content=first_half_then_the_connection_drops(),
                     headers={**headers,
                              "Content-Range": f"bytes 0-{len(SAMPLE) - 1}/{len(SAMPLE)}"})
    assert cut.status_code == 422, cut.text
    assert cut.json()["offset"] == HALF and cut.headers["Upload-Offset"] == str(HALF)

    status = client.get(f"/videos/{video_id}/upload", headers=headers)
    assert status.status_code == 200
    body = status.json()
    assert body["video_id"] == video_id and body["received_bytes"] == HALF
    assert body["total_bytes"] == len(SAMPLE) and body["complete"] is False
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC) + timedelta(hours=23)
    offset = client.head(f"/videos/{video_id}/content", headers=headers)
    assert offset.status_code == 200 and offset.headers["Upload-Offset"] == str(HALF)

    resumed = int(offset.headers["Upload-Offset"])
    rest = _put_range(client, headers, video_id, SAMPLE[resumed:], resumed, len(SAMPLE))
    assert rest.status_code == 200, rest.text
    assert rest.headers["Upload-Offset"] == str(len(SAMPLE))
    source = services.storage.source_path(creator_id, video_id)
    assert source is not None and _sha256(source.read_bytes()) == _sha256(SAMPLE)
    assert _upload_files(services) == []
    done = client.get(f"/videos/{video_id}/upload", headers=headers).json()
    assert done["complete"] is True and done["received_bytes"] == len(SAMPLE)

    confirmed = client.post(f"/videos/{video_id}/confirm", headers=headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "uploaded"
    assert confirmed.json()["duration_s"] == pytest.approx(199, abs=1)


def test_upload_in_many_ranges_extends_its_expiry_with_every_chunk(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    _, headers = _auth(services)
    video_id = _new_video(client, headers)
    soon = datetime.now(UTC) + timedelta(minutes=5)
    services.catalog.extend_upload(video_id, soon)
    step = 400_000
    for start in range(0, len(SAMPLE), step):
        response = _put_range(client, headers, video_id, SAMPLE[start:start + step], start,
                              len(SAMPLE))
        assert response.status_code == 200, response.text
        assert response.headers["Upload-Offset"] == str(min(start + step, len(SAMPLE)))
        expires = services.catalog.find_video(video_id).upload_expires_at
        assert expires is not None and expires > soon + timedelta(hours=23)
    assert client.post(f"/videos/{video_id}/confirm", headers=headers).status_code == 200


def test_range_not_starting_at_the_servers_offset_is_409_with_the_offset(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    _, headers = _auth(services)
    video_id = _new_video(client, headers)
    assert _put_range(client, headers, video_id, SAMPLE[:1000], 0,
                      len(SAMPLE)).status_code == 200

    for wrong_start in (0, 500, 2000):
        response = _put_range(client, headers, video_id, SAMPLE[wrong_start:wrong_start + 1000],
                              wrong_start, len(SAMPLE))
        assert response.status_code == 409, response.text
        assert response.json()["offset"] == 1000
        assert response.headers["Upload-Offset"] == "1000"
    other_total = _put_range(client, headers, video_id, SAMPLE[1000:2000], 1000, len(SAMPLE) + 1)
    assert other_total.status_code == 409 and "started as" in other_total.json()["detail"]
    assert client.get(f"/videos/{video_id}/upload",
                      headers=headers).json()["received_bytes"] == 1000


def test_content_length_that_disagrees_with_the_range_is_refused_before_any_byte(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    _, headers = _auth(services)
    video_id = _new_video(client, headers)
    response = _put_range(client, headers, video_id, SAMPLE[:1000], 0, len(SAMPLE),
                          declared=2000)
    assert response.status_code == 422 and "Content-Length" in response.json()["detail"]
    malformed = client.put(f"/videos/{video_id}/content", content=b"abc",
                           headers={**headers, "Content-Range": "bytes=0-2"})
    assert malformed.status_code == 422 and "START-END/TOTAL" in malformed.json()["detail"]
    assert _upload_files(services) == []


def test_total_over_the_cap_is_413_and_leaves_nothing(api: tuple[Client, Services]) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    video_id = _new_video(client, headers)
    response = _put_range(client, headers, video_id, b"\0" * 1000, 0, CAP + 1)
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    assert _upload_files(services) == []
    assert not services.storage.video_dir(creator_id, video_id).exists()
    state = client.get(f"/videos/{video_id}/upload", headers=headers).json()
    assert state["received_bytes"] == 0 and state["total_bytes"] is None


def test_text_file_sent_in_two_ranges_is_415_and_nothing_is_kept(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    video_id = _new_video(client, headers)
    text = b"lecture notes, not a lecture\n" * 200
    middle = len(text) // 2
    first = _put_range(client, headers, video_id, text[:middle], 0, len(text))
    assert first.status_code == 200 and first.headers["Upload-Offset"] == str(middle)
    second = _put_range(client, headers, video_id, text[middle:], middle, len(text))
    assert second.status_code == 415 and "not a video we can read" in second.json()["detail"]
    assert _upload_files(services) == []
    assert services.storage.source_path(creator_id, video_id) is None
    state = client.get(f"/videos/{video_id}/upload", headers=headers).json()
    assert state["received_bytes"] == 0 and state["complete"] is False
    # The video is still there to receive the right file, from zero.
    again = _put_range(client, headers, video_id, SAMPLE, 0, len(SAMPLE))
    assert again.status_code == 200, again.text


def test_partial_upload_is_never_listed_nor_confirmable_nor_seen_by_the_pipeline(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    _, headers = _auth(services)
    video_id = _new_video(client, headers)
    _put_range(client, headers, video_id, SAMPLE[:HALF], 0, len(SAMPLE))
    assert client.get("/videos", headers=headers).json() == []
    confirm = client.post(f"/videos/{video_id}/confirm", headers=headers)
    assert confirm.status_code == 409
    assert "incomplete" in confirm.json()["detail"] and confirm.json()["offset"] == HALF
    assert list(services.storage.manifests()) == []
    assert client.get(f"/videos/{video_id}", headers=headers).json()["status"] == "awaiting_upload"


def test_whole_body_put_replaces_a_partial_upload(api: tuple[Client, Services]) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    video_id = _new_video(client, headers)
    _put_range(client, headers, video_id, b"garbage" * 100, 0, 10_000)
    whole = client.put(f"/videos/{video_id}/content", content=SAMPLE, headers=headers)
    assert whole.status_code == 200, whole.text
    source = services.storage.source_path(creator_id, video_id)
    assert source is not None and _sha256(source.read_bytes()) == _sha256(SAMPLE)
    assert _upload_files(services) == []
    late = _put_range(client, headers, video_id, SAMPLE[:10], 0, len(SAMPLE))
    assert late.status_code == 409 and late.json()["offset"] == len(SAMPLE)


def test_a_second_writer_in_another_process_gets_409_and_no_bytes_interleave(
    api: tuple[Client, Services]
) -> None:
    client, services = api
    _, headers = _auth(services)
    video_id = _new_video(client, headers)
    storage = services.storage
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path;"
         "from chronos_pipeline.lib.partial_uploads import UploadSlot;"
         "slot = UploadSlot.acquire(Path(sys.argv[1]), Path(sys.argv[2]));"
         "print('held', flush=True); sys.stdin.read()",
         str(storage.upload_path(video_id)), str(storage.upload_lock_path(video_id))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        busy = _put_range(client, headers, video_id, SAMPLE[:HALF], 0, len(SAMPLE))
        assert busy.status_code == 409 and "another request" in busy.json()["detail"]
        assert client.post(f"/videos/{video_id}/confirm", headers=headers).status_code == 409
    finally:
        holder.communicate(b"", timeout=30)
    assert client.get(f"/videos/{video_id}/upload", headers=headers).json()["received_bytes"] == 0
    assert _put_range(client, headers, video_id, SAMPLE, 0, len(SAMPLE)).status_code == 200


def test_expired_upload_is_cleaned_with_its_partial_file(api: tuple[Client, Services]) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    expired = _new_video(client, headers)
    _put_range(client, headers, expired, SAMPLE[:HALF], 0, len(SAMPLE))
    services.catalog.extend_upload(expired, datetime.now(UTC) - timedelta(seconds=1))
    fresh = _new_video(client, headers)
    _put_range(client, headers, fresh, SAMPLE[:HALF], 0, len(SAMPLE))

    assert services.ingest.clean_expired() == 1
    assert client.get(f"/videos/{expired}", headers=headers).status_code == 404
    assert services.catalog.status_history(expired) == []
    assert _upload_files(services) == [f"{fresh}.lock", f"{fresh}.part"]
    assert [v.id for v in services.catalog.list_videos(creator_id, include_unlisted=True)] == [
        fresh]
    assert client.get(f"/videos/{fresh}/upload", headers=headers).json()["received_bytes"] == HALF


def test_complete_but_unconfirmed_upload_expires_too(api: tuple[Client, Services]) -> None:
    client, services = api
    creator_id, headers = _auth(services)
    video_id = _new_video(client, headers)
    assert _put_range(client, headers, video_id, SAMPLE, 0, len(SAMPLE)).status_code == 200
    services.catalog.extend_upload(video_id, datetime.now(UTC) - timedelta(seconds=1))
    assert services.ingest.clean_expired() == 1
    assert not services.storage.video_dir(creator_id, video_id).exists()
    assert client.get(f"/videos/{video_id}", headers=headers).status_code == 404


def test_stray_partial_files_are_removed_at_start_up_and_by_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path / "data", upload_max_bytes=CAP)
    services = Services(settings)
    try:
        creator, _ = services.catalog.create_creator("Ada")
        confirmed = services.ingest.ingest_file(creator.id, SAMPLE_MP4)
        waiting = services.ingest.create(creator.id, "Still arriving")
        storage = services.storage
        storage.upload_path(waiting.id).write_bytes(b"half a lecture")
        # Left by a server killed mid-upload: no row any more, an old-style name, a done video.
        storage.upload_path("vd_00000000000000aa").write_bytes(b"orphan")
        (storage.uploads_root / "vd_00000000000000bb.1a2b3c4d.part").write_bytes(b"old name")
        storage.upload_path(confirmed.id).write_bytes(b"superseded")

        with TestClient(create_app(services=services)):
            pass
        assert sorted(p.name for p in storage.uploads_root.iterdir()) == [f"{waiting.id}.part"]
        assert services.catalog.find_video(waiting.id).status is VideoStatus.AWAITING_UPLOAD

        storage.upload_path("vd_00000000000000cc").write_bytes(b"orphan")
        monkeypatch.setenv("CHRONOS_DATA_DIR", str(settings.data_dir))
        assert chronos(["uploads", "clean"]) == 0
        assert "removed 1 abandoned upload(s)" in capsys.readouterr().out
        assert sorted(p.name for p in storage.uploads_root.iterdir()) == [f"{waiting.id}.part"]
    finally:
        services.close()


def test_the_server_cleans_expired_uploads_periodically(tmp_path: Path) -> None:
    services = Services(make_settings(tmp_path / "data", upload_clean_interval_s=1))
    try:
        with TestClient(create_app(services=services)) as client:
            _, headers = _auth(services)
            video_id = _new_video(client, headers)
            _put_range(client, headers, video_id, SAMPLE[:HALF], 0, len(SAMPLE))
            services.catalog.extend_upload(video_id, datetime.now(UTC) - timedelta(seconds=1))
            deadline = time.monotonic() + 10
            while client.get(f"/videos/{video_id}", headers=headers).status_code != 404:
                assert time.monotonic() < deadline, "the periodic cleaner never ran"
                time.sleep(0.2)
        assert _upload_files(services) == []
    finally:
        services.close()


def test_real_server_killed_mid_upload_keeps_the_partial_a_restarted_server_resumes(
    tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    services = Services(make_settings(data_dir))
    try:
        creator, key = services.catalog.create_creator("Ada")
        headers = {"Authorization": f"Bearer {key}"}
        video_id = services.ingest.create(creator.id, "Lecture 1").id
    finally:
        services.close()
    env = {"CHRONOS_DATA_DIR": str(data_dir)}

    def serve() -> tuple[list[str], str]:
        port = free_port()
        return ([sys.executable, "-m", "chronos_pipeline.cli", "serve", "--port", str(port),
                 "--workers", "2"], f"http://127.0.0.1:{port}")

    def offset(base: str) -> int:
        response = httpx.head(f"{base}/videos/{video_id}/content", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return int(response.headers["Upload-Offset"])

    stop = threading.Event()
    outcome: list[BaseException | httpx.Response] = []

    def half_then_hang() -> Iterator[bytes]:
        for start in range(0, HALF, 64 * 1024):
            yield SAMPLE[start:min(start + 64 * 1024, HALF)]
        stop.wait(60)

    def client() -> None:
        try:
            outcome.append(httpx.put(
                f"{base}/videos/{video_id}/content", content=half_then_hang(), timeout=60,
                headers={**headers, "Content-Range": f"bytes 0-{len(SAMPLE) - 1}/{len(SAMPLE)}"},
            ))
        except BaseException as exc:
            outcome.append(exc)

    command, base = serve()
    with running(command, env, f"{base}/health") as server:
        uploader = threading.Thread(target=client)
        uploader.start()
        deadline = time.monotonic() + 30
        while offset(base) < HALF - 256 * 1024:
            assert time.monotonic() < deadline, "the server never wrote the first half"
            time.sleep(0.1)
        # A second writer, on whichever worker it lands, is refused while the first writes.
        busy = httpx.put(f"{base}/videos/{video_id}/content", content=SAMPLE[:10], timeout=10,
                         headers={**headers, "Content-Range": f"bytes 0-9/{len(SAMPLE)}"})
        assert busy.status_code == 409 and "another request" in busy.json()["detail"]
        os.killpg(server.pid, signal.SIGKILL)
        stop.set()
        uploader.join(timeout=60)
    assert outcome and isinstance(outcome[0], httpx.HTTPError)

    part = data_dir / "storage" / "uploads" / f"{video_id}.part"
    held = part.stat().st_size
    assert HALF - 256 * 1024 <= held <= HALF
    assert part.read_bytes() == SAMPLE[:held]

    command, base = serve()
    with running(command, env, f"{base}/health"):
        assert offset(base) == held  # the restart's clean-up kept the live upload
        rest = httpx.put(f"{base}/videos/{video_id}/content", content=SAMPLE[held:], timeout=60,
                         headers={**headers,
                                  "Content-Range": f"bytes {held}-{len(SAMPLE) - 1}/{len(SAMPLE)}"})
        assert rest.status_code == 200, rest.text
        confirmed = httpx.post(f"{base}/videos/{video_id}/confirm", headers=headers, timeout=30)
        assert confirmed.status_code == 200 and confirmed.json()["status"] == "uploaded"
    source = data_dir / "storage" / "videos" / creator.id / video_id / "source.mp4"
    assert _sha256(source.read_bytes()) == _sha256(SAMPLE)
