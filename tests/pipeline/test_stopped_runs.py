"""A run whose process dies mid-transcription is noticed: the Dagster run is marked failed
and the lecture is queued again, reaching ``ready`` with one set of vectors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import dagster as dg

from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import load_chunks
from chronos_pipeline.operations import STOPPED
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.runner import run_pending
from chronos_pipeline.sensors.run_failures import stopped_run_repair
from chronos_pipeline.tags import EXECUTOR_TAG, IN_PROCESS, PARTITION_TAG
from tests.conftest import SAMPLE_MP4


def _kill_ingest_mid_transcription(services: Services, creator_id: str) -> str:
    """``chronos ingest --wait`` of the sample lecture, killed (SIGKILL) while it
    transcribes; returns the video id."""
    env = {**os.environ, "CHRONOS_DATA_DIR": str(services.settings.data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "chronos_pipeline.cli", "ingest", str(SAMPLE_MP4),
         "--creator", creator_id, "--title", "Killed", "--wait"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True)
    try:
        assert process.stdout is not None
        video_id = process.stdout.readline().strip()
        deadline = time.monotonic() + 180
        while services.catalog.find_video(video_id).status is not VideoStatus.TRANSCRIBING:
            assert time.monotonic() < deadline, services.catalog.find_video(video_id).status
            assert process.poll() is None
            time.sleep(0.2)
        time.sleep(2.0)  # well into the model's work on the audio
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert services.catalog.find_video(video_id).status is VideoStatus.TRANSCRIBING
    return video_id


def _assert_ready_once(services: Services, video_id: str) -> None:
    video = services.catalog.find_video(video_id)
    assert video.status is VideoStatus.READY
    assert services.vectors.count(video_id) == len(load_chunks(services, video)) > 0
    # The killed run had recorded no transcription (local Whisper records when it ends).
    _cols, rows = services.ledger.query(
        "SELECT count(*) FROM cost_records WHERE video_id = ? AND stage = 'transcribe'",
        [video_id])
    assert rows == [(1,)]
    statuses = [(e.status, e.message or "") for e in services.catalog.status_history(video_id)]
    failed = [m for s, m in statuses if s is VideoStatus.FAILED]
    assert len(failed) == 1 and failed[0].startswith(STOPPED)
    assert (VideoStatus.UPLOADED, "retry 1") in statuses


def test_a_killed_ingest_is_failed_in_dagster_and_the_next_run_makes_the_lecture_ready(
    services: Services, creator: tuple[str, str]
) -> None:
    video_id = _kill_ingest_mid_transcription(services, creator[0])
    instance = open_instance(services.settings)
    try:
        [dead] = instance.get_runs(filters=dg.RunsFilter(tags={PARTITION_TAG: video_id}))
        assert dead.status is dg.DagsterRunStatus.STARTED
        assert dead.tags[EXECUTOR_TAG] == IN_PROCESS

        # What the next `chronos ingest --wait` or `chronos serve` tick does.
        outcomes = run_pending(instance, ChronosData(
            data_dir=str(services.settings.data_dir)))

        assert [(o.video_id, o.success) for o in outcomes] == [(video_id, True)]
        after = instance.get_run_by_id(dead.run_id)
        assert after is not None and after.status is dg.DagsterRunStatus.FAILURE
        runs = instance.get_runs(filters=dg.RunsFilter(tags={PARTITION_TAG: video_id}))
        assert sorted(r.tags["dagster/run_key"] for r in runs) == [video_id,
                                                                 f"{video_id}:retry-1"]
        _assert_ready_once(services, video_id)
    finally:
        instance.dispose()


def test_run_failure_sensor_queues_again_the_lecture_of_a_run_monitoring_failed(
    services: Services, creator: tuple[str, str]
) -> None:
    video_id = _kill_ingest_mid_transcription(services, creator[0])
    instance = open_instance(services.settings)
    chronos = ChronosData(data_dir=str(services.settings.data_dir))
    try:
        [dead] = instance.get_runs(filters=dg.RunsFilter(tags={PARTITION_TAG: video_id}))
        # What the daemon's run monitoring does when a run worker is gone.
        event = instance.report_run_failed(dead, "Detected run worker status FAILED")
        failed_run = instance.get_run_by_id(dead.run_id)
        assert failed_run is not None
        context = dg.build_run_status_sensor_context(
            sensor_name="stopped_run_repair", dagster_event=event, dagster_instance=instance,
            dagster_run=failed_run, resources={"data": chronos},
        ).for_run_failure()
        stopped_run_repair(context)

        video = services.catalog.find_video(video_id)
        assert video.status is VideoStatus.UPLOADED
        # The sensor path picks it up under a new run key; evaluating the sensor again
        # (a second failure event for the same run) changes nothing.
        stopped_run_repair(context)
        assert services.catalog.find_video(video_id).status is VideoStatus.UPLOADED
        outcomes = run_pending(instance, chronos)
        assert [(o.video_id, o.success) for o in outcomes] == [(video_id, True)]
        _assert_ready_once(services, video_id)
    finally:
        instance.dispose()
