"""A daemon-launched run whose worker process died with no one watching it (the daemon's
whole process tree killed mid-run, as in a crash) is failed by ``dead_run_worker_sensor``
when a daemon runs again, not at run monitoring's six-hour limit, and its lecture is queued
again and reaches ``ready`` once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from chronos_pipeline.definitions import defs
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.sensors.dead_runs import SENSOR_NAME, dead_run_worker_sensor
from chronos_pipeline.tags import EXECUTOR_TAG, IN_PROCESS
from tests.conftest import SPEECH_DIR
from tests.media import repeated_wav, speech_video
from tests.pipeline.test_stopped_runs import _assert_ready_once
from tests.servers import daemon_for


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
    instance = open_instance(settings)
    try:
        assert isinstance(instance.run_launcher, dg.DefaultRunLauncher)
        log = tmp_path / "daemon-1.log"
        with daemon_for(settings.dagster_home, settings.data_dir, log) as daemon:
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
        dead = instance.get_run_by_id(run.run_id)
        assert dead is not None and dead.status is dg.DagsterRunStatus.STARTED
        assert services.catalog.find_video(video.id).status is VideoStatus.TRANSCRIBING

        log = tmp_path / "daemon-2.log"
        with daemon_for(settings.dagster_home, settings.data_dir, log) as daemon:
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


def test_the_sensor_stands_aside_when_the_run_launcher_is_not_dagsters_default() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = dead_run_worker_sensor(dg.build_sensor_context(instance=instance,
                                                                definitions=defs))
    assert isinstance(result, dg.SkipReason)
    assert "SyncInMemoryRunLauncher" in (result.skip_message or "")


_RUN_THEN = """
import os, signal, sys, time
import dagster as dg
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.settings import Settings

job_name, tags, fate = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:-1]), sys.argv[-1]

@dg.op
def work() -> None:
    if fate == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(120)

@dg.job(name=job_name)
def the_job() -> None:
    work()

the_job.execute_in_process(instance=open_instance(Settings.from_env()), tags=tags)
"""


def test_the_sensor_fails_only_runs_of_this_location_whose_worker_is_gone(
    services: Services, tmp_path: Path
) -> None:
    settings = services.settings
    env = {**os.environ, "CHRONOS_DATA_DIR": str(settings.data_dir)}
    cases = {
        "dead": ["ingest_video", "die"],
        "in-process": ["ingest_video", f"{EXECUTOR_TAG}={IN_PROCESS}", "die"],
        "other job": ["somebody_elses_job", "die"],
        "alive": ["ingest_video", "live"],
    }
    # Each a run executed by a process of its own, which kills itself mid-run or lives on.
    processes = {name: subprocess.Popen(
        [sys.executable, "-c", _RUN_THEN, args[0], f"case={name}", *args[1:]], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, args in cases.items()}
    instance = open_instance(settings)
    try:
        def started() -> dict[str, dg.DagsterRun]:
            runs = {r.tags["case"]: r for r in instance.get_runs()}
            return runs if len(runs) == len(cases) and all(
                r.status is dg.DagsterRunStatus.STARTED for r in runs.values()) else {}

        deadline = time.monotonic() + 120
        while not (started() and all(processes[n].poll() is not None
                                     for n in cases if n != "alive")):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        runs = started()
        result = dead_run_worker_sensor(dg.build_sensor_context(instance=instance,
                                                                definitions=defs))
        assert isinstance(result, dg.SkipReason)
        assert result.skip_message == f"marked failed: {runs['dead'].run_id}"
        after = {name: instance.get_run_by_id(run.run_id) for name, run in runs.items()}
        assert {name: run.status for name, run in after.items() if run} == {
            "dead": dg.DagsterRunStatus.FAILURE,
            "in-process": dg.DagsterRunStatus.STARTED,  # runner.fail_stopped_runs' to judge
            "other job": dg.DagsterRunStatus.STARTED,  # not this code location's
            "alive": dg.DagsterRunStatus.STARTED,
        }
        [failure] = instance.all_logs(runs["dead"].run_id,
                                      of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"pid {processes['dead'].pid} " in (failure.message or "")
    finally:
        processes["alive"].kill()
        for process in processes.values():
            process.wait(timeout=30)
        instance.dispose()
