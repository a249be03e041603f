"""A daemon-launched run whose worker process dies unseen (its code server gone first) is
failed by ``dead_run_worker_sensor`` within a minute, not at run monitoring's six-hour limit,
and its lecture is queued again and reaches ``ready`` once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from chronos_pipeline.definitions import defs
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.processes import process_started_at, still_running
from chronos_pipeline.lib.services import Services
from chronos_pipeline.sensors.dead_runs import SENSOR_NAME, dead_run_worker_sensor
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


def _parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_daemon_run_whose_worker_died_unseen_is_failed_and_its_lecture_made_ready(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    # 33 s of real speech: a worker killed as it starts transcribing has recorded nothing.
    clip = speech_video(repeated_wav(SPEECH_DIR / "jfk.wav", tmp_path / "jfk3.wav", 3),
                        tmp_path / "jfk3.mp4")
    settings = services.settings
    instance = open_instance(settings)
    log = tmp_path / "daemon.log"
    try:
        assert isinstance(instance.run_launcher, dg.DefaultRunLauncher)
        with dagster_daemon(settings.dagster_home, settings.data_dir, log) as daemon:
            video = services.ingest.ingest_file(creator[0], clip, title="Ask not, thrice")
            _wait("transcribing", lambda: services.catalog.find_video(video.id).status
                  is VideoStatus.TRANSCRIBING, daemon, log, every_s=0.05)
            [run] = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": video.id}))
            worker = _worker_pid(instance, run.run_id)
            code_server = _parent_pid(worker)
            assert code_server not in (daemon.pid, os.getpid())
            # The code server that launched the worker goes first (as when the daemon's
            # process tree or the machine dies), so no process is left watching the worker.
            os.kill(code_server, signal.SIGKILL)
            os.kill(worker, signal.SIGKILL)
            killed = instance.get_run_by_id(run.run_id)
            assert killed is not None and killed.status is dg.DagsterRunStatus.STARTED
            assert services.catalog.find_video(video.id).status is VideoStatus.TRANSCRIBING

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


def test_a_pid_is_the_same_process_only_while_it_lives_and_was_not_given_to_a_newer_one(
) -> None:
    now = time.time()
    assert still_running(os.getpid(), now)
    started = process_started_at(os.getpid())
    assert started is not None and started <= now + 1.0
    # The pid seen before this process started belonged to another one (a reused pid).
    assert not still_running(os.getpid(), started - 60.0)
    ended = subprocess.Popen(["true"])
    ended.wait()
    assert not still_running(ended.pid, now)
    assert process_started_at(ended.pid) is None
