"""Retrying a failed lecture: a new Dagster run of its partition, through the upload sensor,
that pays for nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.errors import ConflictError
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.storage import MANIFEST
from chronos_pipeline.operations import forget_partition, retry_video
from chronos_pipeline.partitions import VIDEOS
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.runner import run_pending
from tests.conftest import ready_clip
from tests.media import make_video


def _transcribe_records(services: Services, video_id: str) -> int:
    _cols, rows = services.ledger.query(
        "SELECT count(*) FROM cost_records WHERE video_id = ? AND stage = 'transcribe'",
        [video_id])
    return int(rows[0][0])


def test_retry_runs_the_partition_again_under_a_new_run_key_without_paying_twice(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    video_id = ready_clip(services, creator[0], tmp_path)
    vectors = services.vectors.count(video_id)
    transcribed = _transcribe_records(services, video_id)
    # As if embedding had failed for good after the transcript was made.
    services.catalog.set_status(video_id, VideoStatus.FAILED, "embedding failed: provider down")
    instance = open_instance(services.settings)
    try:
        retried = retry_video(instance, services, video_id)
        assert retried.status is VideoStatus.UPLOADED and retried.error_message is None
        assert services.catalog.status_history(video_id)[-1].message == "retry 1"
        folder = services.storage.video_dir(creator[0], video_id)
        assert json.loads((folder / MANIFEST).read_text())["attempt"] == 1

        outcomes = run_pending(instance, ChronosData(data_dir=str(services.settings.data_dir)))

        assert [(o.video_id, o.success) for o in outcomes] == [(video_id, True)]
        assert services.catalog.find_video(video_id).status is VideoStatus.READY
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": video_id}))
        assert sorted(r.tags["dagster/run_key"] for r in runs) == [video_id,
                                                                 f"{video_id}:retry-1"]
        assert _transcribe_records(services, video_id) == transcribed
        assert services.vectors.count(video_id) == vectors
        assert run_pending(instance, ChronosData(
            data_dir=str(services.settings.data_dir))) == []
    finally:
        instance.dispose()


def test_only_a_failed_lecture_can_be_retried(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    silent = make_video(tmp_path / "silent.mp4", seconds=4, audio="silence")
    video = services.ingest.ingest_file(creator[0], silent, title="Silent")
    instance = open_instance(services.settings)
    try:
        with pytest.raises(ConflictError, match="only a failed lecture"):
            retry_video(instance, services, video.id)
        assert services.catalog.find_video(video.id).status is VideoStatus.UPLOADED
        run_pending(instance, ChronosData(data_dir=str(services.settings.data_dir)))
        assert services.catalog.find_video(video.id).status is VideoStatus.FAILED

        assert retry_video(instance, services, video.id).status is VideoStatus.UPLOADED
        outcomes = run_pending(instance, ChronosData(
            data_dir=str(services.settings.data_dir)))
        assert [o.success for o in outcomes] == [False]
        assert services.catalog.find_video(video.id).status is VideoStatus.FAILED
        assert retry_video(instance, services, video.id).status is VideoStatus.UPLOADED
        assert services.catalog.status_history(video.id)[-1].message == "retry 2"
    finally:
        instance.dispose()


def test_forgetting_a_partition_removes_it_from_dagster(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    silent = make_video(tmp_path / "silent.mp4", seconds=4, audio="silence")
    video = services.ingest.ingest_file(creator[0], silent, title="Silent")
    instance = open_instance(services.settings)
    try:
        run_pending(instance, ChronosData(data_dir=str(services.settings.data_dir)))
        assert instance.has_dynamic_partition(VIDEOS, video.id)
        assert forget_partition(instance, video.id)
        assert not instance.has_dynamic_partition(VIDEOS, video.id)
        assert not forget_partition(instance, video.id)
    finally:
        instance.dispose()
