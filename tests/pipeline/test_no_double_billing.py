"""The catalog decides what needs work: a fresh Dagster instance, a replayed manifest or a
re-triggered run never pays again for a lecture that is ready; an explicit re-embed does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.storage import MANIFEST
from chronos_pipeline.partitions import VIDEOS
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.runner import ingest_job, pending_run_requests, run_config, run_pending
from chronos_pipeline.tags import PARTITION_TAG, REEMBED_TAG
from tests.conftest import SPEECH_DIR
from tests.loopback import cloud_env, loopback
from tests.media import speech_video


def _records(services: Services, video_id: str, stage: str) -> int:
    _cols, rows = services.ledger.query(
        "SELECT count(*) FROM cost_records WHERE video_id = ? AND stage = ?", [video_id, stage])
    return int(rows[0][0])


def test_fresh_instance_over_ready_lectures_requests_no_run_and_calls_no_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with loopback() as server:
        env = {**cloud_env(server, str(tmp_path / "data")), "CHRONOS_TRANSCRIBER": "openai"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        services = Services(Settings.from_env())
        creator, _key = services.catalog.create_creator("Cloud creator")
        clip = speech_video(SPEECH_DIR / "jfk.wav", tmp_path / "jfk.mp4")
        video = services.ingest.ingest_file(creator.id, clip, title="Ask not")
        instance = open_instance(services.settings)
        try:
            assert [o.success for o in run_pending(instance, ChronosData())] == [True]
        finally:
            instance.dispose()
        assert services.catalog.find_video(video.id).status is VideoStatus.READY
        paid = len(server.requests)
        assert server.served("/v1/audio/transcriptions") >= 1

        # A new Dagster instance (a wiped dagster_home) over the same data directory, and
        # the lecture's manifest replayed (touched) on top of it.
        shutil.rmtree(services.settings.dagster_home)
        manifest = services.storage.video_dir(creator.id, video.id) / MANIFEST
        os.utime(manifest)
        fresh = open_instance(services.settings)
        try:
            assert pending_run_requests(fresh, ChronosData()) == []
            assert run_pending(fresh, ChronosData()) == []
            assert fresh.get_runs() == []
        finally:
            fresh.dispose()
        assert len(server.requests) == paid
        assert services.catalog.find_video(video.id).status is VideoStatus.READY
        services.close()


def test_a_rerun_of_a_ready_lecture_pays_nothing_unless_it_asks_to_reembed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with loopback() as server:
        for name, value in cloud_env(server, str(tmp_path / "data")).items():
            monkeypatch.setenv(name, value)
        services = Services(Settings.from_env())
        creator, _key = services.catalog.create_creator("Cloud creator")
        clip = speech_video(SPEECH_DIR / "jfk.wav", tmp_path / "jfk.mp4")
        video = services.ingest.ingest_file(creator.id, clip, title="Ask not")
        instance = open_instance(services.settings)
        try:
            assert [o.success for o in run_pending(instance, ChronosData())] == [True]
            vectors = services.vectors.count(video.id)
            embedded = server.served("/v1/embeddings")
            transcribed = _records(services, video.id, "transcribe")
            config = run_config(ChronosData())
            job = dg.reconstructable(ingest_job)

            again = dg.execute_job(job, instance, run_config=config,
                                   tags={PARTITION_TAG: video.id})
            assert again.success
            assert server.served("/v1/embeddings") == embedded
            assert _records(services, video.id, "transcribe") == transcribed
            latest = instance.fetch_materializations(dg.AssetKey("embeddings"), limit=1)
            materialization = latest.records[0].asset_materialization
            assert materialization is not None
            assert materialization.metadata["reused"].value is True
            assert materialization.metadata["forced"].value == 0

            asked = dg.execute_job(job, instance, run_config=config,
                                   tags={PARTITION_TAG: video.id, REEMBED_TAG: "true"})
            assert asked.success
            assert server.served("/v1/embeddings") > embedded
            assert services.vectors.count(video.id) == vectors
            latest = instance.fetch_materializations(dg.AssetKey("embeddings"), limit=1)
            materialization = latest.records[0].asset_materialization
            assert materialization is not None
            assert materialization.metadata["forced"].value == 1
            assert _records(services, video.id, "transcribe") == transcribed
            assert services.catalog.find_video(video.id).status is VideoStatus.READY
            assert instance.has_dynamic_partition(VIDEOS, video.id)
        finally:
            instance.dispose()
            services.close()
