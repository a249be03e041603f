"""Running the pipeline without a Dagster daemon: tick the upload sensor, execute its runs.

``chronos ingest --wait`` and ``chronos serve`` use this when no daemon is running. A run is
made the way the daemon makes one: from the job the code location serves (the same job
snapshot), with the sensor run's tags (run key, sensor name, partition, creator, lecture),
and executed with Dagster's ``execute_job`` on the configured instance, from this process
(its steps too, with the default in-process executor; ``executors.py``). It shows in the
Dagster UI afterwards, and a daemon started later never runs it again.

Those runs also carry where they execute (``chronos/executor=in-process``, host, pid). The
caller holds the data directory's pipeline lock while it runs them, so when the lock is
held again, such a run still marked in progress belongs to a process that died (a killed
``ingest --wait`` or ``serve``): ``fail_stopped_runs`` marks it failed and hands its lecture
back to the sensor (``operations.repair_after_stopped_run``).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from chronos_pipeline.definitions import definitions_for, defs
from chronos_pipeline.jobs import ingest_video_job
from chronos_pipeline.lib.processes import pid_alive
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.operations import ACTIVE, fail_dead_run, repair_after_stopped_run
from chronos_pipeline.partitions import VIDEOS
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.sensors.uploads import SENSOR_NAME
from chronos_pipeline.tags import (
    EXECUTOR_HOST_TAG,
    EXECUTOR_PID_TAG,
    EXECUTOR_TAG,
    IN_PROCESS,
    PARTITION_TAG,
    RUN_KEY_TAG,
    SENSOR_NAME_TAG,
)

# The daemon writes a heartbeat every 30 s; one missed beat and some slack mean it stopped.
DAEMON_FRESH_S = 45.0
QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass(frozen=True)
class RunOutcome:
    video_id: str
    run_id: str
    success: bool


def ingest_job() -> dg.JobDefinition:
    """The ingest job as the code location serves it, with the providers the environment
    names now (for ``reconstructable``; a process whose settings changed since it imported
    ``definitions`` runs what they say)."""
    return definitions_for(Settings.from_env()).resolve_job_def(ingest_video_job.name)


def daemon_is_running(instance: dg.DagsterInstance) -> bool:
    """True when a Dagster daemon has sent a heartbeat within the last beat interval (it
    then runs the sensor). Callers following a daemon ask again as they wait."""
    try:
        heartbeats = instance.get_daemon_heartbeats()
    except Exception:
        return False
    now = time.time()
    return any(now - beat.timestamp < DAEMON_FRESH_S for beat in heartbeats.values())


def pending_run_requests(
    instance: dg.DagsterInstance, data: ChronosData
) -> list[dg.RunRequest]:
    """Evaluate the upload sensor over all manifests; keep requests no run has served."""
    context = dg.build_sensor_context(
        instance=instance, definitions=defs, cursor=None, resources={"data": data}
    )
    result = defs.resolve_sensor_def(SENSOR_NAME)(context)
    assert isinstance(result, dg.SensorResult)
    pending = []
    for request in result.run_requests or []:
        served = instance.get_runs(
            filters=dg.RunsFilter(tags={RUN_KEY_TAG: str(request.run_key),
                                        SENSOR_NAME_TAG: SENSOR_NAME}),
            limit=1,
        )
        if not served:
            pending.append(request)
    return pending


def fail_stopped_runs(instance: dg.DagsterInstance, data: ChronosData) -> list[str]:
    """Mark failed the in-process runs whose process is gone; their lectures are queued
    again (or failed with the reason). Call it holding the pipeline lock. Returns run ids."""
    host = socket.gethostname()
    stopped = []
    for run in instance.get_runs(filters=dg.RunsFilter(
            job_name=ingest_video_job.name, statuses=ACTIVE, tags={EXECUTOR_TAG: IN_PROCESS})):
        pid = int(run.tags.get(EXECUTOR_PID_TAG, "0") or 0)
        on_this_host = run.tags.get(EXECUTOR_HOST_TAG) == host
        # Another live process on this host with that pid: not ours to judge (a reused pid
        # at worst delays the repair to a later look).
        if on_this_host and pid and pid != os.getpid() and pid_alive(pid):
            continue
        reason = (f"run {run.run_id} was left {run.status.value} when its process "
                  f"(pid {pid or '?'} on {run.tags.get(EXECUTOR_HOST_TAG, '?')}) ended")
        fail_dead_run(instance, run, reason)
        stopped.append(run.run_id)
        video_id = run.tags.get(PARTITION_TAG)
        if video_id:
            repair_after_stopped_run(instance, data.services(), video_id, run.run_id,
                                     reason)
    return stopped


def run_config(data: ChronosData) -> dict[str, Any]:
    """Quiet logs, and the data directory (and catalog) when the resource names them. No
    execution block: the run uses the code location's executor (``CHRONOS_EXECUTOR``,
    in-process by default; chronos_pipeline/executors.py), like the daemon's runs."""
    config: dict[str, Any] = {**QUIET_LOGGING}
    resources = resources_config(data)
    if resources:
        config["resources"] = resources
    return config


def resources_config(data: ChronosData) -> dict[str, Any]:
    """Run config pointing the ``data`` resource (and with it the ledger and the vector
    store) at ``data``'s places; empty when it names none."""
    places = {k: v for k, v in (("data_dir", data.data_dir),
                                ("database_url", data.database_url)) if v}
    return {"data": {"config": places}} if places else {}


def run_tags(request: dg.RunRequest) -> dict[str, str]:
    """The tags the daemon gives a sensor's run, and where this one executes."""
    return {
        **request.tags,
        PARTITION_TAG: str(request.partition_key),
        SENSOR_NAME_TAG: SENSOR_NAME,
        RUN_KEY_TAG: str(request.run_key),
        EXECUTOR_TAG: IN_PROCESS,
        EXECUTOR_HOST_TAG: socket.gethostname(),
        EXECUTOR_PID_TAG: str(os.getpid()),
    }


def run_pending(
    instance: dg.DagsterInstance,
    data: ChronosData,
    *,
    announce: Callable[[str], None] | None = None,
) -> list[RunOutcome]:
    """Repair runs whose process died, then execute every pending upload run in this
    process, oldest upload first."""
    for run_id in fail_stopped_runs(instance, data):
        if announce is not None:
            announce(f"run {run_id} had stopped with its process; marked failed, lecture "
                     "queued again")
    requests = pending_run_requests(instance, data)
    keys = [str(r.partition_key) for r in requests]
    if keys:
        instance.add_dynamic_partitions(VIDEOS, keys)
    job = dg.reconstructable(ingest_job)
    outcomes = []
    for request in requests:
        key = str(request.partition_key)
        if announce is not None:
            announce(f"running the pipeline for {key} in this process")
        result = dg.execute_job(job, instance, run_config=run_config(data),
                                tags=run_tags(request), raise_on_error=False)
        outcomes.append(RunOutcome(key, result.run_id, result.success))
    return outcomes
