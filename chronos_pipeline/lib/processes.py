"""Whether a process on this host is still the one that was running: a pid is alive, and
(where the system says when a process started) it was not handed to a newer process."""

from __future__ import annotations

import os
from pathlib import Path

# /proc/stat's boot time is in whole seconds: a start time read back may be off by one.
START_TIME_SLACK_S = 1.0


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists (ours to signal or not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stat(pid: int) -> list[str] | None:
    """The fields of Linux's /proc/<pid>/stat after the command name (which is in
    parentheses and may hold spaces); None where there is no such file."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_started_at(pid: int) -> float | None:
    """When the process with this pid started (epoch seconds), from Linux's /proc; None when
    the system does not say or there is no such process."""
    fields = _stat(pid)
    try:
        boot = next(line for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    if fields is None:
        return None
    # Field 22 of the line (the 20th after the name): clock ticks from boot to the start.
    return int(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def still_running(pid: int, seen_at: float) -> bool:
    """True while the process that had ``pid`` at ``seen_at`` (epoch seconds) lives: the pid
    exists, is not a zombie (a killed process nobody has reaped yet) and, where the start
    time is known, its process did not start after ``seen_at`` (a pid the system gave to a
    new process after the old one died, as after a reboot)."""
    if not pid_alive(pid):
        return False
    fields = _stat(pid)
    if fields is not None and fields[0] == "Z":
        return False
    started = process_started_at(pid)
    return started is None or started <= seen_at + START_TIME_SLACK_S
