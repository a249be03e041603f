"""Starting real server processes for tests, and always stopping them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    command: Sequence[str], env: dict[str, str], ready_url: str, timeout_s: float = 90.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` in its own process group; yield once ``ready_url`` answers."""
    process = subprocess.Popen(list(command), env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"{command[0]} exited early: {stderr[-2000:]}")
            try:
                if httpx.get(ready_url, timeout=2.0).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ready_url} did not answer within {timeout_s:.0f} s")
            time.sleep(0.5)
        yield process
    finally:
        # Servers with worker processes may ignore a polite stop: end the whole group.
        stop_group(process, grace_s=15)


def stop_group(process: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """End ``process`` and everything in its process group (a server's workers, a daemon's
    code servers and run workers): SIGTERM, then SIGKILL after ``grace_s``. A group a test
    has killed already is fine, and so are children left behind by a leader that exited."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except ProcessLookupError:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    else:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def dagster_daemon(
    env: dict[str, str], log: Path | None = None, *, default_executor: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """``dagster-daemon run`` on the repository's workspace (sensors, the run queue, run
    monitoring) in its own process group, with ``env`` set over this process's environment
    (it names DAGSTER_HOME and the data directory) and ``default_executor`` dropping any
    CHRONOS_EXECUTOR inherited. Its output goes to ``log`` (a pipe nobody reads would fill
    up and stop it), or nowhere. Its code servers and run workers share its group and are
    stopped with it."""
    full = {**os.environ, **env}
    if default_executor:
        full.pop("CHRONOS_EXECUTOR", None)
    command = [str(Path(sys.executable).parent / "dagster-daemon"), "run",
               "-w", str(REPO / "workspace.yaml")]
    with open(log if log is not None else os.devnull, "ab") as output:
        process = subprocess.Popen(command, env=full, cwd=REPO, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        stop_group(process)
