"""Running a job's steps on Celery workers: Dagster's own Celery executor (dagster-celery).

With ``CHRONOS_EXECUTOR=celery`` a run's orchestrator (the run worker the daemon launches)
puts each step on the queue ``CHRONOS_CELERY_QUEUE`` of the broker
``CHRONOS_CELERY_BROKER_URL`` (Redis by default), and any ``chronos celery-worker`` listening
there executes it; results come back through ``CHRONOS_CELERY_BACKEND_URL``. A worker reads
the run and writes its events through the Dagster instance the run names, so Dagster's
storage must be one every machine reaches (PostgreSQL: ``CHRONOS_DAGSTER_PG_URL``), and the
workers run the same code with the same ``CHRONOS_*`` settings and see the same data
directory (one machine, or a shared filesystem).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster_celery import celery_executor

from chronos_pipeline.instance import prepare_dagster_home
from chronos_pipeline.lib.settings import Settings

# The Celery app Dagster's workers run (tasks ``execute_plan`` and friends).
CELERY_APP = "dagster_celery.app"
WORKER_CONFIG = "celery_worker.yaml"


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery executor's config: broker, result backend and the workers' queue."""
    return {
        "broker": settings.celery_broker_url,
        "backend": settings.celery_backend_url,
        "config_source": {"task_default_queue": settings.celery_queue},
    }


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
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    return argv, env


def run_worker(settings: Settings, *, name: str, concurrency: int = 1,
               loglevel: str = "INFO", extra: list[str] | None = None) -> int:
    """Run a Celery worker for Chronos's steps in the foreground; returns its exit code."""
    argv, env = worker_command(settings, name=name, concurrency=concurrency,
                               loglevel=loglevel, extra=extra)
    return subprocess.call(argv, env=env)
