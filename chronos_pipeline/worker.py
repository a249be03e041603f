"""Running uploads in a process without a Dagster daemon: ``chronos serve`` starts one.

A background thread looks every couple of seconds for confirmed uploads no run has served
and runs them in-process (``runner.run_pending``), so an upload through the API reaches
``ready`` with nothing else running. It steps aside while a Dagster daemon is alive (the
daemon's sensor runs them then). An exclusive lock on ``<data dir>/pipeline.lock`` means
several API processes, or ``chronos ingest --wait``, never run the same upload twice.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.storage import Storage
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.runner import RunOutcome, daemon_is_running, run_pending

LOCK_FILE = "pipeline.lock"
INTERVAL_S = 2.0

log = logging.getLogger("chronos.pipeline")


@contextmanager
def pipeline_lock(data_dir: Path) -> Iterator[bool]:
    """Hold the data directory's pipeline lock if nobody else does; yields whether it did."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class PipelineWorker:
    """A daemon thread that runs pending uploads every ``interval_s`` seconds."""

    def __init__(self, settings: Settings, *, interval_s: float = INTERVAL_S) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.data = ChronosData(data_dir=str(settings.data_dir), database_url=settings.database_url)
        self._storage = Storage(settings.storage_dir)
        self._instance: dg.DagsterInstance | None = None
        self._handled: frozenset[tuple[str, int]] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chronos-pipeline",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> bool:
        """Ask the thread to end and wait for it (a run in progress finishes first);
        returns whether it ended within ``timeout_s``."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        ended = not self._thread.is_alive()
        if ended and self._instance is not None:
            self._instance.dispose()
            self._instance = None
        return ended

    def tick(self) -> list[RunOutcome] | None:
        """Run what is pending; None when it was not this worker's turn (a daemon runs, or
        another process holds the lock)."""
        manifests = frozenset((str(p), m) for p, m in self._storage.manifests())
        if manifests == self._handled:
            return []  # no upload confirmed or retried since the last look
        if self._instance is None:
            self._instance = open_instance(self.settings)
        if daemon_is_running(self._instance):
            return None
        with pipeline_lock(self.settings.data_dir) as held:
            if not held:
                return None
            outcomes = run_pending(self._instance, self.data, announce=log.info)
        self._handled = manifests
        for outcome in outcomes:
            log.info("pipeline run %s for %s %s", outcome.run_id, outcome.video_id,
                     "succeeded" if outcome.success else "failed")
        return outcomes

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:
                # One bad tick (a busy database, a broken manifest) must not end the loop.
                log.exception("pipeline worker tick failed; trying again")
            self._stopping.wait(self.interval_s)
