"""Real runs of the ingest job: statuses, metadata, idempotence, failures, PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.runner import resources_config, run_pending
from tests.conftest import SAMPLE_MP4, World
from tests.media import make_video


def test_ready_video_walked_through_every_status(world: World) -> None:
    history = [e.status for e in world.services.catalog.status_history(world.video_id)]
    assert history == [
        VideoStatus.AWAITING_UPLOAD, VideoStatus.UPLOADED, VideoStatus.QUEUED,
        VideoStatus.TRANSCRIBING, VideoStatus.CHUNKING, VideoStatus.EMBEDDING,
        VideoStatus.READY,
    ]


def test_materializations_carry_counts_durations_and_cost(world: World) -> None:
    def latest(asset: str) -> dict[str, object]:
        events = world.instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
        materialization = events[0].asset_materialization
        assert materialization is not None and materialization.partition == world.video_id
        return {k: v.value for k, v in materialization.metadata.items()}

    transcript = latest("transcript")
    assert transcript["cost_usd"] == 0.0
    assert transcript["usage_audio_second"] == pytest.approx(199, abs=2)
    assert int(str(transcript["words"])) > 350
    embeddings = latest("embeddings")
    chunks = latest("chunks")
    assert embeddings["vectors"] == chunks["chunks"]
    assert float(str(embeddings["usage_input_token"])) > 0
    assert latest("video")["thumbnail"] == "thumbnail.jpg"


def test_playback_is_a_remux_made_after_the_lecture_is_ready(world: World) -> None:
    record = world.instance.fetch_materializations(dg.AssetKey("playback"), limit=1).records[0]
    materialization = record.asset_materialization
    assert materialization is not None and materialization.partition == world.video_id
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert (metadata["mode"], metadata["codecs"]) == ("remux", "h264/aac")
    folder = world.services.storage.video_dir(world.creator_id, world.video_id)
    assert metadata["bytes"] == (folder / "playback.mp4").stat().st_size
    # In an in-process run the low-priority playback step waits: chat is ready first.
    started = [e.step_key for e in world.instance.all_logs(record.run_id)
               if e.dagster_event is not None
               and e.dagster_event.event_type_value == "STEP_START"]
    assert started.index("playback") > started.index("embeddings")


def test_asset_checks_passed(world: World) -> None:
    for asset, check in (("transcript", "transcript_is_speech"),
                         ("embeddings", "vectors_match_chunks")):
        key = dg.AssetCheckKey(dg.AssetKey(asset), check)
        record = world.instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        assert record and record[0].evaluation is not None and record[0].evaluation.passed
        # One result per video in the Checks tab, not only the latest video's.
        assert record[0].partition == world.video_id
        assert record[0].evaluation.metadata["video_id"].value == world.video_id


def test_an_in_process_run_carries_the_tags_and_job_snapshot_of_a_sensor_run(
    world: World
) -> None:
    from chronos_pipeline.runner import ingest_job

    [run] = world.instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/partition": world.video_id}), limit=1)
    assert {k: run.tags[k] for k in ("dagster/run_key", "dagster/sensor_name",
                                      "chronos/creator", "chronos/lecture")} == {
        "dagster/run_key": world.video_id, "dagster/sensor_name": "upload_sensor",
        "chronos/creator": "Sample creator", "chronos/lecture": "Momentum indicators"}
    # The job the code location serves, not an ephemeral in-process copy.
    assert run.job_snapshot_id == ingest_job().get_job_snapshot_id()


def test_rematerializing_a_partition_keeps_the_vector_count(world: World) -> None:
    before = world.services.vectors.count(world.video_id)
    from chronos_pipeline.definitions import defs

    result = defs.resolve_job_def("ingest_video").execute_in_process(
        instance=world.instance, partition_key=world.video_id,
        run_config={"resources": resources_config(world.data)},
    )
    assert result.success
    assert before > 0 and world.services.vectors.count(world.video_id) == before
    assert world.services.catalog.find_video(world.video_id).status is VideoStatus.READY


def test_silent_video_fails_with_a_message_a_creator_can_act_on(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    silent = make_video(tmp_path / "silent.mp4", seconds=6, audio="silence")
    video = services.ingest.ingest_file(creator[0], silent, title="Silent")
    instance = open_instance(services.settings)
    chronos = ChronosData(data_dir=str(services.settings.data_dir))
    outcomes = run_pending(instance, chronos)
    assert [o.success for o in outcomes] == [False]
    failed = services.catalog.find_video(video.id)
    assert failed.status is VideoStatus.FAILED
    assert failed.error_message is not None and "no speech" in failed.error_message
    # The transcription call was billed before the step failed.
    _, rows = services.ledger.query(
        "SELECT count(*) FROM cost_records WHERE stage = 'transcribe' AND video_id = ?",
        [video.id])
    assert rows == [(1,)]
    # A terminal failure is not retried.
    run = instance.get_run_by_id(outcomes[0].run_id)
    assert run is not None
    retries = [e for e in instance.all_logs(run.run_id)
               if e.dagster_event is not None
               and e.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []
    instance.dispose()


@pytest.mark.postgres
def test_end_to_end_run_on_postgres_dagster_storage(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Configured the way a deployment is: through the environment, read once.
    monkeypatch.setenv("CHRONOS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHRONOS_DATABASE_URL", pg_url)
    monkeypatch.setenv("CHRONOS_DAGSTER_PG_URL", pg_url)
    settings = Settings.from_env()
    services = Services(settings)
    creator, _ = services.catalog.create_creator("Postgres creator")
    video = services.ingest.ingest_file(creator.id, SAMPLE_MP4, title="On Postgres")
    instance = open_instance(settings)
    try:
        assert "postgres" in type(instance.run_storage).__module__
        outcomes = run_pending(instance, ChronosData())
        assert [o.success for o in outcomes] == [True]
        assert services.catalog.find_video(video.id).status is VideoStatus.READY
        run = instance.get_run_by_id(outcomes[0].run_id)
        assert run is not None and run.tags["dagster/run_key"] == video.id
        assert services.vectors.count(video.id) > 0
    finally:
        instance.dispose()
        services.close()
