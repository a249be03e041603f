"""A run of the ingest job executes its steps where ``CHRONOS_EXECUTOR`` says: by default all
in the run's own process (one process start, one model load), for the daemon's runs as for
the runs Chronos executes itself."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pytest

from chronos_pipeline.definitions import defs
from chronos_pipeline.executors import executor_def
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.errors import ConfigurationError
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.runner import daemon_is_running
from tests.conftest import SPEECH_DIR, World
from tests.media import speech_video
from tests.servers import dagster_daemon

INGEST_STEPS = {"video", "transcript", "chunks", "embeddings", "playback"}


def _process_of_each_step(instance: dg.DagsterInstance, run_id: str) -> tuple[int, dict[str, int]]:
    """The pid that started the run, and the pid each step started in."""
    run_pid = 0
    steps: dict[str, int] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.pid is None:
            continue
        if event.event_type is dg.DagsterEventType.RUN_START:
            run_pid = event.pid
        elif event.event_type is dg.DagsterEventType.STEP_START and event.step_key:
            steps[event.step_key] = event.pid
    return run_pid, steps


def test_unknown_executor_is_a_clear_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CHRONOS_EXECUTOR='threads' is not available; "
                                                 "choose one of in_process, multiprocess, celery"):
        Settings.from_env({"CHRONOS_DATA_DIR": str(tmp_path), "CHRONOS_EXECUTOR": "threads"})
    with pytest.raises(ConfigurationError, match="CHRONOS_EXECUTOR='threads'"):
        executor_def(Settings(data_dir=tmp_path, executor="threads"))


def test_executor_defaults_to_in_process_and_each_choice_is_dagsters(tmp_path: Path) -> None:
    assert Settings.from_env({"CHRONOS_DATA_DIR": str(tmp_path)}).executor == "in_process"
    assert defs.resolve_job_def("ingest_video").executor_def is dg.in_process_executor
    assert executor_def(Settings(data_dir=tmp_path, executor="multiprocess")) is (
        dg.multiprocess_executor)
    assert executor_def(Settings(data_dir=tmp_path, executor="celery")).name == "celery"


def test_a_run_chronos_executes_itself_runs_every_step_in_its_process(world: World) -> None:
    [run] = world.instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/partition": world.video_id}), limit=1)
    run_pid, steps = _process_of_each_step(world.instance, run.run_id)
    assert set(steps) == INGEST_STEPS
    assert set(steps.values()) == {run_pid} == {os.getpid()}


def test_a_daemon_launched_run_executes_every_step_in_the_run_process(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    instance = open_instance(services.settings)
    clip = speech_video(SPEECH_DIR / "jfk.wav", tmp_path / "jfk.mp4")
    try:
        log = tmp_path / "daemon.log"
        with dagster_daemon({"DAGSTER_HOME": str(services.settings.dagster_home),
                             "CHRONOS_DATA_DIR": str(services.settings.data_dir)},
                            log, default_executor=True) as daemon:
            video = services.ingest.ingest_file(creator[0], clip, title="Ask not")
            deadline = time.monotonic() + 300
            runs: Sequence[dg.DagsterRun] = []
            while not (runs and runs[0].is_finished):
                assert daemon.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, (
                    services.catalog.find_video(video.id).status, daemon_is_running(instance))
                time.sleep(0.5)
                runs = instance.get_runs(
                    filters=dg.RunsFilter(tags={"dagster/partition": video.id}))
        [run] = runs
        assert run.status is dg.DagsterRunStatus.SUCCESS
        assert services.catalog.find_video(video.id).status is VideoStatus.READY
        run_pid, steps = _process_of_each_step(instance, run.run_id)
        assert set(steps) == INGEST_STEPS
        # The run worker the daemon launched executed them all: no process per step.
        assert set(steps.values()) == {run_pid}
        assert run_pid not in (0, os.getpid(), daemon.pid)
    finally:
        instance.dispose()
