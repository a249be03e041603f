"""The pipeline worker of ``chronos serve``: runs uploads without a daemon, one process at a
time."""

from __future__ import annotations

import time
from pathlib import Path

from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.worker import PipelineWorker, pipeline_lock
from tests.media import make_video


def test_worker_waits_while_another_process_holds_the_pipeline_lock(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    silent = make_video(tmp_path / "silent.mp4", seconds=4, audio="silence")
    video = services.ingest.ingest_file(creator[0], silent, title="Silent")
    worker = PipelineWorker(services.settings)
    try:
        with pipeline_lock(services.settings.data_dir) as held:
            assert held
            assert worker.tick() is None
            assert services.catalog.find_video(video.id).status is VideoStatus.UPLOADED
        outcomes = worker.tick()
        assert outcomes is not None and [o.video_id for o in outcomes] == [video.id]
        assert services.catalog.find_video(video.id).status is VideoStatus.FAILED
        assert worker.tick() == []  # nothing new: no second run of the same upload
    finally:
        worker.stop()


def test_worker_thread_runs_a_new_upload_and_stops_when_asked(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    worker = PipelineWorker(services.settings, interval_s=0.5)
    worker.start()
    try:
        silent = make_video(tmp_path / "silent.mp4", seconds=4, audio="silence")
        video = services.ingest.ingest_file(creator[0], silent, title="Silent")
        deadline = time.monotonic() + 120
        while services.catalog.find_video(video.id).status is not VideoStatus.FAILED:
            assert time.monotonic() < deadline, services.catalog.find_video(video.id).status
            time.sleep(0.5)
        assert "no speech" in (services.catalog.find_video(video.id).error_message or "")
    finally:
        assert worker.stop(timeout_s=60)
