"""Starting real server processes for tests, and always stopping them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@contextmanager
def dagster_daemon(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``dagster-daemon run`` on the repository's workspace (sensors, the run queue, run
    monitoring) in its own process group, its output in ``log``; ``env`` names
    DAGSTER_HOME and the data directory. Its run processes are in the group too."""
    repo = Path(__file__).resolve().parent.parent
    command = [str(Path(sys.executable).parent / "dagster-daemon"), "run",
               "-w", str(repo / "workspace.yaml")]
    with open(log, "ab") as output:
        process = subprocess.Popen(command, env={**os.environ, **env}, cwd=repo,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@contextmanager
def daemon_for(
    dagster_home: Path, data_dir: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``dagster-daemon run`` on the repository's workspace and this data directory's
    instance, with the default executor; its output goes to ``log`` (a pipe nobody reads
    would fill up and stop it)."""
    env = {key: value for key, value in os.environ.items() if key != "CHRONOS_EXECUTOR"}
    env.update(DAGSTER_HOME=str(dagster_home), CHRONOS_DATA_DIR=str(data_dir),
               PYTHONPATH=str(REPO))
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run",
             "-w", str(REPO / "workspace.yaml")],
            env=env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        # The daemon's code servers and run workers share its session: stop them all
        # (a test may have killed them already).
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
