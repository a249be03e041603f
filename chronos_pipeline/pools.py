"""Dagster concurrency pools: the steps that hold a provider, named by what they limit.

Each name goes on the asset's ``pool=`` argument. How many steps of a pool run at once is
instance configuration (``concurrency: pools: default_limit`` in ``dagster_home/*.yaml``,
or ``dagster instance concurrency set <pool> <limit>`` / the UI's Concurrency page, which
wins over the default). Steps without a pool (probe, playback, chunks) never wait, so they
overlap another lecture's transcription.
"""

from __future__ import annotations

import os

# The transcriber: local faster-whisper (CPU-bound, CHRONOS_WHISPER_THREADS threads each)
# or the OpenAI transcription API (its per-minute request limit).
TRANSCRIPTION = "transcription"
# The embedder: local MiniLM (the same threads setting) or the OpenAI embeddings API.
EMBEDDING = "embedding"

ALL = (TRANSCRIPTION, EMBEDDING)


def machine_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_slots(threads_per_step: int, cores: int | None = None) -> int:
    """How many steps of ``threads_per_step`` threads the machine runs without making each
    other wait for a core: 1 on 2 cores with Whisper's 2 threads, 4 on 8."""
    available = machine_cores() if cores is None else cores
    return max(1, available // max(1, threads_per_step))
