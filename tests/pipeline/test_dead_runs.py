"""``dead_run_worker_sensor`` fails a daemon-launched run whose worker process died with no
one watching it (the daemon's whole process tree killed mid-run, as in a crash), not at run
monitoring's six-hour limit; ``stopped_run_repair`` then queues its lecture again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from chronos_pipeline.definitions import defs
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.services import Services
from chronos_pipeline.sensors.dead_runs import dead_run_worker_sensor
from chronos_pipeline.tags import EXECUTOR_TAG, IN_PROCESS


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
