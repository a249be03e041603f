"""Which Dagster executor runs a job's steps, from ``CHRONOS_EXECUTOR``.

- ``in_process`` (the default): every step of a run in the run's own process, one after
  another. On the embedded default a run of the ingest job then starts one process and
  loads Whisper and the embedding model once (the providers cache them per process);
  Whisper has both cores to itself and the low-priority playback step waits until the
  lecture is ready for chat.
- ``multiprocess``: one process per step (Dagster's usual choice): every step pays a
  process start, a code load and its own model load, and steps that don't depend on each
  other run side by side. Worth it only with more cores than one transcription uses.
- ``celery``: steps go to Celery workers on other machines (``chronos_pipeline/
  celery_executor.py``, which needs ``dagster-celery``).

The choice is the code location's default executor, so it holds for every run: the
daemon's (sensor → run queue → run worker) and the runs ``chronos ingest --wait`` and
``chronos serve`` execute themselves (``runner.py``).
"""

from __future__ import annotations

import importlib

import dagster as dg

from chronos_pipeline.lib.errors import ConfigurationError
from chronos_pipeline.lib.settings import EXECUTORS, Settings


def executor_def(settings: Settings) -> dg.ExecutorDefinition:
    """The executor ``settings.executor`` (``CHRONOS_EXECUTOR``) names."""
    name = settings.executor
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        return dg.multiprocess_executor
    if name == "celery":
        try:
            module = importlib.import_module("chronos_pipeline.celery_executor")
        except ImportError as exc:
            raise ConfigurationError(
                f"CHRONOS_EXECUTOR=celery needs dagster-celery ({exc})"
            ) from exc
        celery: dg.ExecutorDefinition = module.celery_executor_def(settings)
        return celery
    raise ConfigurationError(f"CHRONOS_EXECUTOR={name!r} is not available; choose one of "
                             f"{', '.join(EXECUTORS)}")
