"""Running a job's steps on Celery workers: Dagster's own Celery executor (dagster-celery).

With ``CHRONOS_EXECUTOR=celery`` a run's orchestrator (the run worker the daemon launches)
puts each step on the queue ``CHRONOS_CELERY_QUEUE`` of the broker
``CHRONOS_CELERY_BROKER_URL`` (Redis by default), and any ``chronos celery-worker`` listening
there executes it; results come back through ``CHRONOS_CELERY_BACKEND_URL``. A worker reads
the run and writes its events through the Dagster instance the run names, so Dagster's
storage must be one every machine reaches (PostgreSQL: ``CHRONOS_DAGSTER_PG_URL``), and the
workers run the same code with the same ``CHRONOS_*`` settings and see the same data
directory (one machine, or a shared filesystem).

A step whose worker dies (``kill -9``, the OOM killer, a lost machine) is run again by
another worker, and the run goes on; dagster-celery's orchestrator only waits for the
step's task id, so it takes the result of whichever worker finishes it:

- ``task_acks_late``: a worker acknowledges a step's message when the step has ended, not
  when it takes it, so a message whose worker died is still the broker's to give again.
- ``task_reject_on_worker_lost``: when only the pool process running the step dies, the
  worker puts the message back at once (by default it would report the step failed with
  ``WorkerLostError``, and the run would fail).
- ``visibility_timeout`` (``CHRONOS_CELERY_VISIBILITY_TIMEOUT_S``): when the whole worker
  is gone, Redis cannot tell; a taken message unacknowledged after this long goes back on
  the queue (every worker sweeps for such messages every ``unacked_restore_interval``
  seconds). The trade-off: a dead worker's step waits up to this long before it is run
  again, and a step still running after this long on a live worker is given to a second
  worker as well, so it must exceed the longest step (the transcription of the longest
  lecture). Celery's default, one hour, is the default here.
- ``worker_deduplicate_successful_tasks``: a message given again after its step succeeded
  (the worker died before acknowledging it) is dropped, not run twice.
- ``task_annotations`` (``SkipStepsOfEndedRuns``): a message given again after its run
  ended (its orchestrator died too, and the run was failed and the lecture queued again)
  is dropped: run late, the step would move a settled lecture back to a stage no run
  finishes.

Running a step again reuses what the catalog and the ledger hold (a transcript this model
made, vectors matching the chunks). Local transcription records its usage when it ends, so
audio a dead worker was transcribing was never recorded; a cloud transcriber records each
piece as it returns, and pieces a dead worker had sent are paid again.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from celery.exceptions import Ignore
from dagster_celery import celery_executor
from dagster_celery.config import TASK_EXECUTE_PLAN_NAME
from dagster_celery.defaults import broker_transport_options

from chronos_pipeline.instance import prepare_dagster_home
from chronos_pipeline.lib.settings import Settings

# The Celery app Dagster's workers run (tasks ``execute_plan`` and friends).
CELERY_APP = "dagster_celery.app"
WORKER_CONFIG = "celery_worker.yaml"
# Seconds between each worker's sweeps for messages taken longer than the visibility
# timeout ago (kombu's Redis transport); throttle 1 makes every sweep look.
RESTORE_INTERVAL_S = 10

logger = logging.getLogger(__name__)


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery executor's config: broker, result backend, the workers' queue, and steps
    of a dead worker given to another (see the module docstring)."""
    return {
        "broker": settings.celery_broker_url,
        "backend": settings.celery_backend_url,
        "config_source": {
            "task_default_queue": settings.celery_queue,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_deduplicate_successful_tasks": True,
            "task_annotations": f"{__name__}.{SkipStepsOfEndedRuns.__name__}",
            # dagster-celery's connection retries, kept: this dict replaces its own.
            "broker_transport_options": {
                **broker_transport_options,
                "visibility_timeout": settings.celery_visibility_timeout_s,
                "unacked_restore_interval": RESTORE_INTERVAL_S,
                "unacked_restore_throttle": 1,
            },
        },
    }


class SkipStepsOfEndedRuns:
    """Celery task annotation: a worker drops a step of a run that has ended, unrun."""

    def annotate(self, task: Any) -> dict[str, Any] | None:
        if task.name == TASK_EXECUTE_PLAN_NAME:
            return {"before_start": _skip_step_of_ended_run}
        return None


def _skip_step_of_ended_run(task: Any, task_id: str, args: Any, kwargs: dict[str, Any]) -> None:
    # Called on dagster-celery's step task, in the worker, before the step runs.
    step_args: Any = dg.deserialize_value(json.dumps(kwargs["execute_step_args_packed"]))
    with dg.DagsterInstance.from_ref(step_args.instance_ref) as instance:
        run = instance.get_run_by_id(step_args.run_id)
    if run is None or run.is_finished:
        logger.warning("dropping step %s of run %s: the run is %s", step_args.step_keys_to_execute,
                       step_args.run_id, run.status.value if run else "gone")
        raise Ignore()


def celery_executor_def(settings: Settings) -> dg.ExecutorDefinition:
    """dagster-celery's ``celery_executor``, configured from the settings (no run config)."""
    executor: dg.ExecutorDefinition = celery_executor.configured(
        celery_config(settings), name="celery"
    )
    return executor


def worker_config_file(settings: Settings) -> Path:
    """Write the executor's config where ``dagster-celery worker start -y`` reads it."""
    home = prepare_dagster_home(settings)
    path = home / WORKER_CONFIG
    text = yaml.safe_dump({"execution": {"config": celery_config(settings)}}, sort_keys=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def worker_command(
    settings: Settings, *, name: str, concurrency: int = 1, loglevel: str = "INFO",
    extra: list[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """``dagster-celery worker start`` for this deployment: its argv and environment.

    The environment carries the settings the steps read (data directory, DAGSTER_HOME,
    ``CHRONOS_EXECUTOR=celery`` so the worker loads the job the orchestrator runs) and puts
    this interpreter's ``celery`` first on PATH.
    """
    config = worker_config_file(settings)
    argv = [sys.executable, "-m", "dagster_celery.cli", "worker", "start",
            "-A", CELERY_APP, "-y", str(config), "-q", settings.celery_queue,
            "-n", name, "-l", loglevel, "--", f"--concurrency={concurrency}", *(extra or [])]
    env = {
        **os.environ,
        "DAGSTER_HOME": str(settings.dagster_home),
        "CHRONOS_DATA_DIR": str(settings.data_dir),
        "CHRONOS_EXECUTOR": "celery",
        "CHRONOS_CELERY_BROKER_URL": settings.celery_broker_url,
        "CHRONOS_CELERY_BACKEND_URL": settings.celery_backend_url,
        "CHRONOS_CELERY_QUEUE": settings.celery_queue,
        "CHRONOS_CELERY_VISIBILITY_TIMEOUT_S": str(settings.celery_visibility_timeout_s),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    return argv, env


def run_worker(settings: Settings, *, name: str, concurrency: int = 1,
               loglevel: str = "INFO", extra: list[str] | None = None) -> int:
    """Run a Celery worker for Chronos's steps in the foreground; returns its exit code."""
    argv, env = worker_command(settings, name=name, concurrency=concurrency,
                               loglevel=loglevel, extra=extra)
    return subprocess.call(argv, env=env)
