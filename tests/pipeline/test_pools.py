"""Many uploads at once: with a real daemon dequeuing the upload sensor's runs, the run queue
keeps one creator from taking every slot and the transcription pool keeps Whisper to the
machine, while the runs themselves overlap."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from chronos_pipeline import pools
from chronos_pipeline.definitions import defs
from chronos_pipeline.instance import open_instance
from chronos_pipeline.jobs import ingest_video_job
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.tags import CREATOR_ID_TAG
from tests.conftest import SPEECH_DIR, make_settings
from tests.media import speech_video
from tests.servers import dagster_daemon

CLIPS = sorted(SPEECH_DIR.glob("*.wav"))
RUNS_TIMEOUT_S = 1200.0
TRANSCRIPT_STEP = "transcript"
STEP_ENDS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
             dg.DagsterEventType.STEP_UP_FOR_RETRY}


def creator_limit(instance: dg.DagsterInstance) -> tuple[int, int]:
    """(max concurrent runs, runs per creator) from the instance's run queue config."""
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None, "the instance has no run queue"
    limits = [t for t in queue.tag_concurrency_limits if t["key"] == CREATOR_ID_TAG]
    assert len(limits) == 1, queue.tag_concurrency_limits
    assert limits[0]["value"] == {"applyLimitPerUniqueValue": True}
    return queue.max_concurrent_runs, int(limits[0]["limit"])


def pool_limits(instance: dg.DagsterInstance) -> dict[str, int]:
    """What the UI's Concurrency page lists: every pool with a limit in the instance."""
    storage = instance.event_log_storage
    return {p.name: p.limit for p in storage.get_pool_limits()
            if p.name in storage.get_concurrency_keys()}


def upload_lectures(services: Services, creators: Sequence[str], per_creator: int,
                    folder: Path) -> dict[str, str]:
    """Each creator uploads ``per_creator`` short speech clips, creator after creator;
    returns video id → creator id."""
    uploaded: dict[str, str] = {}
    for creator_id in creators:
        for _ in range(per_creator):
            n = len(uploaded)
            clip = speech_video(CLIPS[n % len(CLIPS)], folder / f"clip{n}.mp4")
            video = services.ingest.ingest_file(creator_id, clip, title=f"Lecture {n}")
            uploaded[video.id] = creator_id
    return uploaded


def wait_for_runs(instance: dg.DagsterInstance, count: int, daemon: Any,
                  log: Path) -> list[dg.RunRecord]:
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while True:
        records = instance.get_run_records(
            filters=dg.RunsFilter(job_name=ingest_video_job.name))
        if len(records) == count and all(r.dagster_run.is_finished for r in records):
            return list(records)
        if daemon.poll() is not None:
            pytest.fail(f"the daemon exited: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            states = [r.dagster_run.status.value for r in records]
            pytest.fail(f"{count} runs did not finish in {RUNS_TIMEOUT_S:.0f} s: {states}")
        time.sleep(2.0)


def step_intervals(instance: dg.DagsterInstance, run_id: str,
                   step_key: str) -> list[tuple[float, float]]:
    """(start, end) of every attempt of one step, from the run's event log."""
    events = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, *STEP_ENDS})
    intervals, started = [], None
    for entry in events:
        if entry.step_key != step_key or entry.dagster_event is None:
            continue
        if entry.dagster_event.event_type is dg.DagsterEventType.STEP_START:
            started = entry.timestamp
        elif started is not None:
            intervals.append((started, entry.timestamp))
            started = None
    assert started is None, f"{step_key} of run {run_id} started and never ended"
    return intervals


def most_at_once(intervals: Sequence[tuple[float, float]]) -> int:
    """The largest number of intervals open at one moment (an end before a start at a tie)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    open_now = peak = 0
    for _, change in edges:
        open_now += change
        peak = max(peak, open_now)
    return peak


def daemon_env(settings: Settings, threads: int) -> dict[str, str]:
    env = {"DAGSTER_HOME": str(settings.dagster_home),
           "CHRONOS_DATA_DIR": str(settings.data_dir),
           "CHRONOS_WHISPER_THREADS": str(threads),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if settings.dagster_pg_url:
        env["CHRONOS_DAGSTER_PG_URL"] = settings.dagster_pg_url
    return env


def test_only_the_provider_steps_wait_for_a_pool() -> None:
    declared = {key: defs.resolve_assets_def(key).op.pool
                for key in ("video", "transcript", "chunks", "embeddings", "playback")}
    assert declared == {"video": None, "transcript": pools.TRANSCRIPTION, "chunks": None,
                        "embeddings": pools.EMBEDDING, "playback": None}


def test_the_transcription_pool_is_as_wide_as_the_machine_and_never_closed() -> None:
    assert pools.machine_slots(2, cores=2) == 1  # Whisper's two threads take both cores
    assert pools.machine_slots(2, cores=8) == 4
    assert pools.machine_slots(4, cores=2) == 1  # wider than the machine: still one


# The PostgreSQL template's pool width: provider rate limits, not the machine.
POSTGRES_POOL_SLOTS = 3


@pytest.mark.parametrize("storage", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_pools_are_listed_before_any_run_and_an_operators_limit_is_kept(
    storage: str, settings: Settings, request: pytest.FixtureRequest
) -> None:
    slots = pools.machine_slots(settings.whisper_threads)
    if storage == "postgres":
        settings = settings.with_overrides(dagster_pg_url=request.getfixturevalue("pg_url"))
        slots = POSTGRES_POOL_SLOTS
    instance = open_instance(settings)
    try:
        assert pool_limits(instance) == {pools.TRANSCRIPTION: slots, pools.EMBEDDING: slots}
        # `dagster instance concurrency set transcription 5` (or the UI) outlives a restart.
        instance.event_log_storage.set_concurrency_slots(pools.TRANSCRIPTION, 5)
    finally:
        instance.dispose()
    reopened = open_instance(settings)
    try:
        assert pool_limits(reopened) == {pools.TRANSCRIPTION: 5, pools.EMBEDDING: slots}
    finally:
        reopened.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["sqlite", pytest.param("postgres",
                                                            marks=pytest.mark.postgres)])
def test_two_creators_uploads_share_the_queue_and_whisper_never_exceeds_its_pool(
    storage: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Whisper as wide as the machine: the transcription pool is then one slot on any
    # machine, fewer than the runs in flight, so a second transcription at once would show.
    threads = pools.machine_cores()
    overrides: dict[str, Any] = {"whisper_threads": threads}
    if storage == "postgres":
        overrides["dagster_pg_url"] = request.getfixturevalue("pg_url")
    settings = make_settings(tmp_path / "data", **overrides)
    services = Services(settings)
    instance = open_instance(settings)
    try:
        if storage == "postgres":
            # The production template sizes pools for the OpenAI APIs; with local Whisper
            # an operator gives the pool the machine's width, and Chronos leaves it alone.
            assert pool_limits(instance)[pools.TRANSCRIPTION] > 1
            instance.event_log_storage.set_concurrency_slots(pools.TRANSCRIPTION, 1)
            open_instance(settings).dispose()
        # Both pools are listed (the Concurrency page) before any step has claimed a slot.
        limits = pool_limits(instance)
        assert set(pools.ALL) <= set(limits), limits
        assert limits[pools.TRANSCRIPTION] == 1
        max_runs, per_creator = creator_limit(instance)
        assert per_creator < max_runs  # no creator can take every slot

        first, second = (services.catalog.create_creator(name)[0].id
                         for name in ("Busy creator", "Other creator"))
        # The busy creator uploads one more lecture than they may run at once, all of them
        # before the other creator's.
        uploaded = upload_lectures(services, [first, second], per_creator + 1, tmp_path)
        log = tmp_path / "daemon.log"
        with dagster_daemon(daemon_env(settings, threads), log) as daemon:
            records = wait_for_runs(instance, len(uploaded), daemon, log)

        assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
        assert {services.catalog.find_video(v).status for v in uploaded} == {VideoStatus.READY}
        runs = sorted(records, key=lambda r: r.start_time or 0.0)
        creators = [r.dagster_run.tags[CREATOR_ID_TAG] for r in runs]
        assert sorted(creators) == sorted(uploaded.values())

        # The other creator's first lecture started before the busy creator's last one,
        # though it was uploaded after all of them.
        busy_starts = [i for i, c in enumerate(creators) if c == first]
        assert creators.index(second) < busy_starts[per_creator], creators
        spans = [(r.start_time or 0.0, r.end_time or 0.0) for r in runs]
        for i, (start, _end) in enumerate(spans):
            in_flight = [j for j, (s, e) in enumerate(spans) if s <= start < e]
            assert len(in_flight) <= max_runs
            assert sum(creators[j] == creators[i] for j in in_flight) <= per_creator
        # Runs did overlap (else the limits below would hold for nothing).
        assert most_at_once(spans) >= 2, spans

        transcriptions = [span for r in runs
                          for span in step_intervals(instance, r.dagster_run.run_id,
                                                     TRANSCRIPT_STEP)]
        assert len(transcriptions) >= len(uploaded)
        assert most_at_once(transcriptions) <= limits[pools.TRANSCRIPTION], transcriptions
    finally:
        instance.dispose()
        services.close()
