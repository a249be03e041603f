"""Definitions load, and the upload sensor requests each video exactly once."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from chronos_pipeline.definitions import defs
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.resources.providers import (
    LocalChatResource,
    LocalEmbedderResource,
    LocalWhisperResource,
)
from chronos_pipeline.resources.stores import LedgerResource
from chronos_pipeline.sensors.uploads import upload_sensor
from tests.conftest import SAMPLE_MP4


def test_definitions_name_each_resource_by_concern() -> None:
    resources = defs.get_repository_def().get_top_level_resources()
    assert set(resources) == {"data", "ledger", "vector_store", "transcriber", "embedder",
                              "chat_model"}
    # The embedded default, from an environment that names nothing.
    from chronos_pipeline import definitions

    assert isinstance(definitions.transcriber, LocalWhisperResource)
    assert isinstance(definitions.embedder, LocalEmbedderResource)
    assert isinstance(definitions.chat_model, LocalChatResource)


def test_an_unknown_embedding_model_in_the_launchpad_is_a_clear_failure(
    services: Services, creator: tuple[str, str]
) -> None:
    from chronos_pipeline.assets.reembedding_estimate import reembedding_estimate

    result = dg.materialize(
        [reembedding_estimate], raise_on_error=False,
        resources={"data": ChronosData(data_dir=str(services.settings.data_dir)),
                   "ledger": LedgerResource(data=ChronosData(
                       data_dir=str(services.settings.data_dir))),
                   "chat_model": LocalChatResource()},
        run_config={"ops": {"reembedding_estimate": {"config": {"model": "word2vec"}}}},
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "unknown embedding model 'word2vec'" in str(failure.event_specific_data)


def test_definitions_load() -> None:
    repository = defs.get_repository_def()
    assert {k.to_user_string() for k in repository.asset_graph.get_all_asset_keys()} == {
        "video", "transcript", "chunks", "embeddings", "playback", "ledger_compaction",
        "vector_maintenance", "reembedding_estimate"}
    assert repository.asset_graph.get(dg.AssetKey("playback")).parent_keys == {
        dg.AssetKey("video")}
    ingest = defs.resolve_job_def("ingest_video")
    assert "playback" in {node.name for node in ingest.graph.node_defs}
    assert defs.resolve_job_def("ingest_video") is not None
    assert defs.resolve_schedule_def("ledger_compaction_every_10_minutes").default_status is (
        dg.DefaultScheduleStatus.RUNNING)
    vectors = defs.resolve_schedule_def("vector_maintenance_hourly")
    assert vectors.default_status is dg.DefaultScheduleStatus.RUNNING
    assert vectors.job_name == "optimize_vectors"
    assert defs.resolve_sensor_def("upload_sensor").default_status is (
        dg.DefaultSensorStatus.RUNNING)
    check_names = {key.name for key in repository.asset_graph.asset_check_keys}
    assert check_names == {"transcript_is_speech", "vectors_match_chunks"}
    for spec in defs.resolve_all_asset_specs():
        assert spec.owners == ["team:chronos"] and spec.code_version, spec.key
    assert defs.resolve_sensor_def("stopped_run_repair").default_status is (
        dg.DefaultSensorStatus.RUNNING)
    assert defs.resolve_sensor_def("dead_run_worker_sensor").default_status is (
        dg.DefaultSensorStatus.RUNNING)


def _tick(services: Services, cursor: str | None) -> dg.SensorResult:
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor,
            resources={"data": ChronosData(data_dir=str(services.settings.data_dir))},
        )
        result = upload_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_sensor_cursor_never_re_requests_a_processed_video(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    first = services.ingest.ingest_file(creator[0], SAMPLE_MP4, title="One")
    tick = _tick(services, None)
    assert [r.partition_key for r in tick.run_requests or []] == [first.id]
    assert [r.run_key for r in tick.run_requests or []] == [first.id]
    assert (tick.run_requests or [])[0].tags == {
        "chronos/creator_id": creator[0], "chronos/creator": "Test creator",
        "chronos/lecture": "One"}
    requests = tick.dynamic_partitions_requests or []
    assert [list(r.partition_keys or []) for r in requests] == [[first.id]]
    assert services.catalog.find_video(first.id).status is VideoStatus.QUEUED

    again = _tick(services, tick.cursor)
    assert again.run_requests == [] and again.cursor == tick.cursor

    second = services.ingest.ingest_file(creator[0], SAMPLE_MP4, title="Two")
    later = _tick(services, again.cursor)
    assert [r.partition_key for r in later.run_requests or []] == [second.id]


def test_sensor_ignores_uploads_that_were_never_confirmed(
    services: Services, creator: tuple[str, str]
) -> None:
    video = services.ingest.create(creator[0], "Half done")
    with open(SAMPLE_MP4, "rb") as handle:
        services.ingest.receive(creator[0], video.id, [handle.read()])
    assert _tick(services, None).run_requests == []
