"""DELETE /videos/{id} deletes a lecture for real (costs stay); POST …/retry requeues a
failed one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.chunking import Chunk
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import load_chunks
from chronos_pipeline.lib.vectors import VectorStore
from chronos_pipeline.partitions import VIDEOS
from tests.conftest import ready_clip
from tests.media import make_video

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def client(services: Services) -> Iterator[Client]:
    with TestClient(create_app(services=services)) as built:
        yield built


def test_deleting_a_ready_lecture_removes_files_vectors_and_partition_but_not_costs(
    services: Services, creator: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    creator_id, api_key = creator
    headers = {"Authorization": f"Bearer {api_key}"}
    video_id = ready_clip(services, creator_id, tmp_path)
    video = services.catalog.find_video(video_id)
    chunks: list[Chunk] = load_chunks(services, video)
    # Rows of the same lecture under an earlier embedding model must go as well.
    older = VectorStore(services.settings.lancedb_dir, "older-model", 8)
    older.replace_video(creator_id=creator_id, video_id=video_id, course_id=None,
                        chunks=chunks, vectors=np.ones((len(chunks), 8), np.float32))
    query, _usage = services.embedder.embed(["ask what you can do for your country"])
    assert {h.video_id for h in services.vectors.search(query[0], creator_id=creator_id)} == {
        video_id}
    _cols, before = services.ledger.query(
        "SELECT count(*) FROM cost_records WHERE video_id = ?", [video_id])

    response = client.delete(f"/videos/{video_id}", headers=headers)

    assert response.status_code == 204, response.text
    assert services.vectors.search(query[0], creator_id=creator_id) == []
    assert services.vectors.count(video_id) == 0 and older.count(video_id) == 0
    assert not services.storage.video_dir(creator_id, video_id).exists()
    assert client.get(f"/videos/{video_id}", headers=headers).status_code == 404
    assert video_id not in {v["id"] for v in client.get("/videos", headers=headers).json()}
    assert services.catalog.find_video(video_id).status is VideoStatus.DELETED
    _cols, after = services.ledger.query(
        "SELECT count(*) FROM cost_records WHERE video_id = ?", [video_id])
    assert after == before and before[0][0] > 0
    instance = open_instance(services.settings)
    try:
        assert not instance.has_dynamic_partition(VIDEOS, video_id)
    finally:
        instance.dispose()
    assert client.delete(f"/videos/{video_id}", headers=headers).status_code == 404


def test_a_lecture_being_processed_is_not_deleted(
    services: Services, creator: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    creator_id, api_key = creator
    silent = make_video(tmp_path / "silent.mp4", seconds=4, audio="silence")
    video = services.ingest.ingest_file(creator_id, silent, title="Busy")
    services.catalog.set_status(video.id, VideoStatus.TRANSCRIBING)

    response = client.delete(f"/videos/{video.id}",
                             headers={"Authorization": f"Bearer {api_key}"})

    assert response.status_code == 409
    assert "when it is ready or failed" in response.json()["detail"]
    assert services.storage.source_path(creator_id, video.id) is not None
    assert services.catalog.find_video(video.id).status is VideoStatus.TRANSCRIBING


def test_an_unfinished_upload_is_deleted_with_its_partial_bytes(
    services: Services, creator: tuple[str, str], client: Client
) -> None:
    creator_id, api_key = creator
    headers = {"Authorization": f"Bearer {api_key}"}
    video = services.ingest.create(creator_id, "Half uploaded")
    half = client.put(f"/videos/{video.id}/content", content=b"x" * 1000,
                      headers={**headers, "Content-Range": "bytes 0-999/2000"})
    assert half.status_code == 200
    assert list(services.storage.uploads_root.glob(f"{video.id}.*"))

    response = client.delete(f"/videos/{video.id}", headers=headers)

    assert response.status_code == 204
    assert list(services.storage.uploads_root.glob(f"{video.id}.*")) == []


def test_retry_route_requeues_a_failed_lecture_and_refuses_others(
    services: Services, creator: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    creator_id, api_key = creator
    headers = {"Authorization": f"Bearer {api_key}"}
    silent = make_video(tmp_path / "silent.mp4", seconds=4, audio="silence")
    video = services.ingest.ingest_file(creator_id, silent, title="Silent")

    refused = client.post(f"/videos/{video.id}/retry", headers=headers)
    assert refused.status_code == 409

    services.catalog.set_status(video.id, VideoStatus.FAILED, "no speech was found")
    accepted = client.post(f"/videos/{video.id}/retry", headers=headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "uploaded"
    assert accepted.json()["error_message"] is None

    _stranger, stranger_key = services.catalog.create_creator("Stranger")
    foreign = client.post(f"/videos/{video.id}/retry",
                          headers={"Authorization": f"Bearer {stranger_key}"})
    assert foreign.status_code == 404
