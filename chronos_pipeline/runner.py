"""Running the pipeline without a Dagster daemon: tick the upload sensor, execute its runs.

``chronos ingest --wait`` uses this when no daemon is running. The runs are executed
in-process on the configured Dagster instance with the sensor's run-key tags, so they
show in the Dagster UI afterwards and a daemon started later never runs them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from chronos_pipeline.definitions import defs
from chronos_pipeline.jobs import ingest_video_job
from chronos_pipeline.partitions import VIDEOS
from chronos_pipeline.resources.chronos import ChronosResource
from chronos_pipeline.sensors.uploads import SENSOR_NAME

DAEMON_FRESH_S = 60.0
QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass(frozen=True)
class RunOutcome:
    video_id: str
    run_id: str
    success: bool


def daemon_is_running(instance: dg.DagsterInstance) -> bool:
    """True when a Dagster daemon has sent a heartbeat recently (it then runs the sensor)."""
    try:
        heartbeats = instance.get_daemon_heartbeats()
    except Exception:
        return False
    now = time.time()
    return any(now - beat.timestamp < DAEMON_FRESH_S for beat in heartbeats.values())


def pending_run_requests(
    instance: dg.DagsterInstance, chronos: ChronosResource
) -> list[dg.RunRequest]:
    """Evaluate the upload sensor over all manifests; keep requests no run has served."""
    context = dg.build_sensor_context(
        instance=instance, definitions=defs, cursor=None, resources={"chronos": chronos}
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


def run_pending(
    instance: dg.DagsterInstance,
    chronos: ChronosResource,
    *,
    announce: Callable[[str], None] | None = None,
) -> list[RunOutcome]:
    """Execute every pending upload run in this process, oldest upload first."""
    requests = pending_run_requests(instance, chronos)
    keys = [str(r.partition_key) for r in requests]
    if keys:
        instance.add_dynamic_partitions(VIDEOS, keys)
    job = defs.resolve_job_def(ingest_video_job.name)
    outcomes = []
    for request in requests:
        key = str(request.partition_key)
        if announce is not None:
            announce(f"running the pipeline for {key} in this process")
        result = job.execute_in_process(
            instance=instance, partition_key=key, raise_on_error=False,
            run_config=QUIET_LOGGING, resources={"chronos": chronos},
            tags={RUN_KEY_TAG: str(request.run_key), SENSOR_NAME_TAG: SENSOR_NAME},
        )
        outcomes.append(RunOutcome(key, result.run_id, result.success))
    return outcomes
