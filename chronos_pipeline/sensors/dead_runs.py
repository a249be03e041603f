"""Runs the daemon launched whose run worker died unseen are failed within a minute, not at
run monitoring's six-hour limit; ``stopped_run_repair`` then queues their lectures again.

Dagster's ``DefaultRunLauncher`` starts each run worker as a process of the code server that
serves the run's code location, on that server's host. That code server fails a run whose
worker dies within a second, but only while it lives itself: when it is gone first (the
daemon and its servers were killed or the machine restarted mid-run, or the server process
alone died), nothing watches the worker, and run monitoring cannot ask this launcher about
worker health. This sensor, evaluated by a code server of the same location and so on the
workers' host, reads each started run's worker pid from its ``RUN_START`` event.
"""

from __future__ import annotations

import logging
import socket
import time

import dagster as dg

from chronos_pipeline.lib.processes import still_running
from chronos_pipeline.operations import fail_dead_run
from chronos_pipeline.tags import EXECUTOR_TAG, IN_PROCESS

SENSOR_NAME = "dead_run_worker_sensor"
# A worker found gone is looked at again after this long: its own code server, if alive,
# fails the run within a second (with the exit code); that report is the better one.
CONFIRM_AFTER_S = 2.0


@dg.sensor(name=SENSOR_NAME, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_worker_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Marks failed the started runs of this code location whose run worker process (launched
    on this host by Dagster's DefaultRunLauncher) has ended without reporting an outcome."""
    instance = context.instance
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        return dg.SkipReason(
            f"the run launcher is {type(instance.run_launcher).__name__}: its workers are not "
            "processes on this host (run monitoring checks them)")
    failed = fail_dead_runs(instance, context.repository_def, context.log)
    if failed:
        return dg.SkipReason(f"marked failed: {', '.join(failed)}")
    return dg.SkipReason("every started run's worker is alive")


def fail_dead_runs(
    instance: dg.DagsterInstance, repository: dg.RepositoryDefinition | None,
    log: logging.Logger | None = None,
) -> list[str]:
    """Fail the started runs (of ``repository``'s jobs) whose worker process is gone; the
    runs Chronos executes itself (``chronos/executor=in-process``) are left to
    ``runner.fail_stopped_runs``. Returns the failed run ids."""
    jobs = set(repository.job_names) if repository is not None else None
    suspects: list[tuple[dg.DagsterRun, int]] = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        if run.tags.get(EXECUTOR_TAG) == IN_PROCESS or (jobs is not None
                                                         and run.job_name not in jobs):
            continue
        worker = _worker(instance, run.run_id)
        if worker is not None and not still_running(*worker):
            suspects.append((run, worker[0]))
    if not suspects:
        return []
    time.sleep(CONFIRM_AFTER_S)
    failed = []
    for run, pid in suspects:
        # Read again after the worker is known gone: a worker that finished the run wrote
        # its outcome before it exited.
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status is not dg.DagsterRunStatus.STARTED:
            continue
        fail_dead_run(
            instance, current, f"Run worker process (pid {pid} on {socket.gethostname()}) "
                               f"ended without finishing the run; marked failed by {SENSOR_NAME}")
        failed.append(run.run_id)
        if log is not None:
            log.warning(f"run {run.run_id}: worker pid {pid} is gone; marked failed")
    return failed


def _worker(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the process that started executing the run, and when it said so (the
    latest ``RUN_START``: a resumed run has a new worker)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, limit=1, ascending=False).records
    if not records:
        return None
    entry = records[0].event_log_entry
    pid = entry.dagster_event.pid if entry.dagster_event is not None else None
    return (pid, entry.timestamp) if pid else None
