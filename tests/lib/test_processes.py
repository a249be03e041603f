"""A run worker's pid means that worker only while it lives, unreaped zombies and pids the
system handed to a newer process count as gone."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from chronos_pipeline.lib.processes import process_started_at, still_running


def test_a_live_process_is_running_for_a_time_after_it_started() -> None:
    now = time.time()
    assert still_running(os.getpid(), now)
    started = process_started_at(os.getpid())
    assert started is not None and started <= now + 1.0


def test_a_pid_seen_before_its_process_started_belonged_to_another_one() -> None:
    started = process_started_at(os.getpid())
    assert started is not None
    assert not still_running(os.getpid(), started - 60.0)


def test_an_ended_process_is_not_running_reaped_or_not() -> None:
    now = time.time()
    ended = subprocess.Popen(["true"])
    stat = Path(f"/proc/{ended.pid}/stat")
    deadline = time.monotonic() + 30
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":  # exited, not yet reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not still_running(ended.pid, now)
    ended.wait()
    assert not still_running(ended.pid, now)
    assert process_started_at(ended.pid) is None
