"""Scaling out: runs the Dagster daemon launches execute their steps on Celery workers.

Everything is real: PostgreSQL for Dagster's storage and the catalog, Redis as the Celery
broker and result backend, two ``chronos celery-worker`` processes and a ``dagster-daemon``
started as subprocesses. Each test run gets its own Celery queue name, so parallel runs
sharing one Redis never take each other's steps.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pytest

from chronos_pipeline.celery_executor import celery_executor_def, worker_command
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.steps import load_chunks
from tests.conftest import REPO, SPEECH_DIR
from tests.media import speech_video

REDIS_URL = os.environ.get("CHRONOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CLIPS = ["jfk.wav", "LJ050-0131.wav", "sense_and_sensibility_01_austen_64kb-0870.wav",
         "sense_and_sensibility_01_austen_64kb-0890.wav"]
# Hang guards only (a broken setup fails instead of waiting forever), never assertions.
WORKER_START_S = 120.0
ALL_SETTLED_S = 900.0


@pytest.fixture
def redis_url() -> str:
    """The test Redis; mandatory in CI (CHRONOS_REQUIRE_REDIS=1), skipped elsewhere."""
    parsed = urlparse(REDIS_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379),
                                      timeout=3):
            pass
    except OSError as exc:
        if os.environ.get("CHRONOS_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required here but not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"no Redis server at {REDIS_URL} ({exc}): the Celery executor needs a broker")
    return REDIS_URL


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    # Workers fork pool processes and the daemon starts code servers and run workers: end the
    # whole group; the daemon may take its time over a polite stop.
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    else:
        with suppress(ProcessLookupError):  # children left behind by a leader that exited
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def started(argv: list[str], env: dict[str, str], log: Path,
            cwd: Path = REPO) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        _stop_group(process)


def forget_queue(redis_url: str, queue: str) -> None:
    """Drop what Celery left in Redis for this test's queue (its bindings and any list)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}",
                *client.scan_iter(match=f"{queue}*")]
        client.delete(*keys)
    finally:
        client.close()


def wait_for_worker(process: subprocess.Popen[bytes], log: Path, name: str) -> None:
    """Until Celery logs ``<name>@<host> ready.``: it consumes the queue from then on."""
    deadline = time.monotonic() + WORKER_START_S
    ready = re.compile(rf"{re.escape(name)}@\S+ ready\.")
    while not ready.search(log.read_text()):
        if process.poll() is not None:
            raise RuntimeError(f"worker {name} exited early:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker {name} not ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def test_workers_read_the_broker_backend_and_queue_the_executor_uses(tmp_path: Path) -> None:
    from dagster_celery.cli import get_validated_config

    settings = Settings.from_env({"CHRONOS_DATA_DIR": str(tmp_path / "data"),
                                  "CHRONOS_CELERY_BROKER_URL": "redis://broker:6379/3",
                                  "CHRONOS_CELERY_QUEUE": "lectures"})
    # The result backend follows the broker unless set apart.
    assert settings.celery_backend_url == "redis://broker:6379/3"
    assert celery_executor_def(settings).name == "celery"
    argv, env = worker_command(settings, name="w1", concurrency=2)
    config_file = Path(argv[argv.index("-y") + 1])
    assert get_validated_config(str(config_file)) == {
        "broker": "redis://broker:6379/3", "backend": "redis://broker:6379/3",
        "config_source": {"task_default_queue": "lectures"},
        "retries": {"enabled": {}},
    }
    assert argv[argv.index("-q") + 1] == "lectures" and "--concurrency=2" in argv
    # The worker loads the job with the executor the orchestrator used, on this data dir.
    assert (env["CHRONOS_EXECUTOR"], env["DAGSTER_HOME"]) == (
        "celery", str(settings.dagster_home))
    assert Path(env["PATH"].split(os.pathsep)[0], "celery").is_file()


@pytest.mark.postgres
def test_four_uploads_run_on_two_celery_workers_with_postgres_storage(
    pg_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"chronos_test_{secrets.token_hex(4)}"
    # Configured the way a deployment is: through the environment, read once per process.
    deployment = {
        "CHRONOS_DATA_DIR": str(tmp_path / "data"),
        "CHRONOS_DATABASE_URL": pg_url,
        "CHRONOS_DAGSTER_PG_URL": pg_url,
        "CHRONOS_EXECUTOR": "celery",
        "CHRONOS_CELERY_BROKER_URL": redis_url,
        "CHRONOS_CELERY_QUEUE": queue,
    }
    for key, value in deployment.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env()
    services = Services(settings)
    instance = open_instance(settings)
    assert "postgres" in type(instance.run_storage).__module__
    workers = [f"{queue}-w{i}" for i in (1, 2)]
    started_at = time.monotonic()
    try:
        with ExitStack() as stack:
            for name in workers:
                argv, env = worker_command(settings, name=name)
                log = tmp_path / f"{name}.log"
                process = stack.enter_context(started(argv, env, log))
                wait_for_worker(process, log, name)
            # One upload burst: four lectures confirmed before the daemon looks.
            creator, _ = services.catalog.create_creator("Celery creator")
            videos = []
            for wav in CLIPS:
                clip = speech_video(SPEECH_DIR / wav, tmp_path / f"{Path(wav).stem}.mp4")
                videos.append(services.ingest.ingest_file(creator.id, clip,
                                                          title=Path(wav).stem).id)
            daemon_env = {**os.environ, "DAGSTER_HOME": str(settings.dagster_home)}
            daemon = stack.enter_context(started(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run",
                 "-w", str(REPO / "workspace.yaml")], daemon_env, tmp_path / "daemon.log"))
            deadline = time.monotonic() + ALL_SETTLED_S
            while True:
                statuses = [services.catalog.find_video(v).status for v in videos]
                if all(s in (VideoStatus.READY, VideoStatus.FAILED) for s in statuses):
                    break
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"lectures {statuses}; daemon log:\n"
                        f"{(tmp_path / 'daemon.log').read_text()[-3000:]}")
                time.sleep(2)
            # A lecture is ready before its run ends: the asset checks and the run's
            # own bookkeeping follow the embeddings step, so wait for the runs too.
            while True:
                runs = instance.get_runs(filters=dg.RunsFilter(job_name="ingest_video"))
                if len(runs) >= len(videos) and all(r.is_finished for r in runs):
                    break
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"runs {[(r.run_id, r.status) for r in runs]}; daemon log:\n"
                        f"{(tmp_path / 'daemon.log').read_text()[-3000:]}")
                time.sleep(1)
        print(f"four lectures settled {time.monotonic() - started_at:.0f} s after the "
              "workers were started")
        assert statuses == [VideoStatus.READY] * 4, [
            services.catalog.find_video(v).error_message for v in videos]
        for video_id in videos:
            video = services.catalog.find_video(video_id)
            assert services.vectors.count(video_id) == len(load_chunks(services, video)) > 0

        # Every step of every run executed in a Celery worker, and both workers took work.
        assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(videos)
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs)
        took_work: dict[str, set[str]] = {}
        for run in runs:
            started_steps, on_worker = set(), {}
            for record in instance.all_logs(run.run_id):
                event = record.dagster_event
                if event is None or event.step_key is None:
                    continue
                if event.event_type_value == "STEP_START":
                    started_steps.add(event.step_key)
                if event.event_type_value == "ENGINE_EVENT":
                    metadata = event.engine_event_data.metadata
                    if "Celery worker" in metadata:
                        on_worker[event.step_key] = str(metadata["Celery worker"].value)
            assert started_steps == set(on_worker) >= {"video", "transcript", "chunks",
                                                        "embeddings"}
            for step, host in on_worker.items():
                took_work.setdefault(host.split("@")[0], set()).add(f"{run.run_id}:{step}")
        assert set(took_work) == set(workers), took_work
    finally:
        instance.dispose()
        services.close()
        forget_queue(redis_url, queue)
