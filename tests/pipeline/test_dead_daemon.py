"""A daemon-launched run whose worker process died with no one watching it (the daemon's
whole process tree killed mid-run, as in a crash) is failed by ``dead_run_worker_sensor``
when a daemon runs again, not at run monitoring's six-hour limit, and its lecture is queued
again and reaches ``ready`` once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.processes import still_running
from chronos_pipeline.lib.services import Services
from chronos_pipeline.sensors.dead_runs import SENSOR_NAME
from tests.conftest import SPEECH_DIR
from tests.media import repeated_wav, speech_video
from tests.pipeline.test_stopped_runs import _assert_ready_once
from tests.servers import dagster_daemon


def _wait(what: str, done: Callable[[], bool], daemon: subprocess.Popen[bytes], log: Path,
          timeout_s: float = 300.0, every_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert daemon.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{what}: {log.read_text()[-3000:]}"
        time.sleep(every_s)


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    [entry] = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    assert entry.dagster_event is not None and entry.dagster_event.pid
    return entry.dagster_event.pid


def test_a_daemon_run_whose_worker_died_unseen_is_failed_and_its_lecture_made_ready(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    # 22 s of real speech: a worker killed as it starts transcribing has recorded nothing.
    clip = speech_video(repeated_wav(SPEECH_DIR / "jfk.wav", tmp_path / "jfk2.wav", 2),
                        tmp_path / "jfk2.mp4")
    settings = services.settings
    env = {"DAGSTER_HOME": str(settings.dagster_home), "CHRONOS_DATA_DIR": str(settings.data_dir)}
    instance = open_instance(settings)
    try:
        assert isinstance(instance.run_launcher, dg.DefaultRunLauncher)
        log = tmp_path / "daemon-1.log"
        with dagster_daemon(env, log, default_executor=True) as daemon:
            video = services.ingest.ingest_file(creator[0], clip, title="Ask not, twice")
            _wait("transcribing", lambda: services.catalog.find_video(video.id).status
                  is VideoStatus.TRANSCRIBING, daemon, log, every_s=0.05)
            [run] = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": video.id}))
            worker = _worker_pid(instance, run.run_id)
            assert worker not in (daemon.pid, os.getpid())
            # The daemon, its code server (which would have seen the worker die) and the
            # run worker, all at once.
            os.killpg(daemon.pid, signal.SIGKILL)
            # A run worker outside the daemon's process group (or one that outlives it) is
            # killed too: the whole machine's Dagster processes are gone.
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
            daemon.wait(timeout=30)
        # A killed process with a large heap takes a moment to go on a busy machine.
        deadline = time.monotonic() + 60
        while still_running(worker, time.time()):
            assert time.monotonic() < deadline, f"worker {worker} outlived SIGKILL"
            time.sleep(0.5)
        dead = instance.get_run_by_id(run.run_id)
        assert dead is not None and dead.status is dg.DagsterRunStatus.STARTED
        assert services.catalog.find_video(video.id).status is VideoStatus.TRANSCRIBING

        log = tmp_path / "daemon-2.log"
        with dagster_daemon(env, log, default_executor=True) as daemon:
            def settled() -> bool:
                runs = instance.get_runs(
                    filters=dg.RunsFilter(tags={"dagster/partition": video.id}))
                return len(runs) == 2 and all(r.is_finished for r in runs)

            _wait("the retry run", settled, daemon, log)

        runs = {r.tags["dagster/run_key"]: r for r in instance.get_runs(
            filters=dg.RunsFilter(tags={"dagster/partition": video.id}))}
        assert runs[video.id].status is dg.DagsterRunStatus.FAILURE
        assert runs[f"{video.id}:retry-1"].status is dg.DagsterRunStatus.SUCCESS
        [failure] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"pid {worker} " in (failure.message or "") and SENSOR_NAME in failure.message
        _assert_ready_once(services, video.id)
        history = services.catalog.status_history(video.id)
        assert any(f"pid {worker} " in (e.message or "") for e in history
                   if e.status is VideoStatus.FAILED)
    finally:
        instance.dispose()
