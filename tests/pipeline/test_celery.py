"""Scaling out: runs the Dagster daemon launches execute their steps on Celery workers.

Everything is real: PostgreSQL for Dagster's storage and the catalog, Redis as the Celery
broker and result backend, ``chronos celery-worker`` processes and a ``dagster-daemon``
started as subprocesses; a worker killed with SIGKILL is really killed. Each test run gets
its own Celery queue name, so parallel runs sharing one Redis never take each other's steps.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pytest

from chronos_pipeline.celery_executor import celery_config, celery_executor_def, worker_command
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.steps import load_chunks
from chronos_pipeline.pools import TRANSCRIPTION
from tests.conftest import REPO, SPEECH_DIR
from tests.media import repeated_wav, speech_video
from tests.servers import dagster_daemon, stop_group

REDIS_URL = os.environ.get("CHRONOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CLIPS = ["jfk.wav", "LJ050-0131.wav", "sense_and_sensibility_01_austen_64kb-0870.wav",
         "sense_and_sensibility_01_austen_64kb-0890.wav"]
# Hang guards only (a broken setup fails instead of waiting forever), never assertions.
WORKER_START_S = 120.0
ALL_SETTLED_S = 900.0
STEP_STARTED_S = 300.0
# Short, so a dead worker's step comes back within the test. A step of the live worker that
# outlasts it is given again to that same worker after it ends, which drops it.
VISIBILITY_TIMEOUT_S = 30


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


@contextmanager
def started(argv: list[str], env: dict[str, str], log: Path,
            cwd: Path = REPO) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        # Workers fork pool processes: end the whole group.
        stop_group(process, grace_s=20)


def forget_queue(redis_url: str, queue: str) -> None:
    """Drop what Celery left in Redis for this test's queue (its bindings, any list, and
    messages taken by a worker that never acknowledged them)."""
    import json

    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}",
                *client.scan_iter(match=f"{queue}*")]
        client.delete(*keys)
        for tag, payload in client.hgetall("unacked").items():
            _message, _exchange, routing_key = json.loads(payload)
            if str(routing_key).startswith(queue):
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
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
        "config_source": {
            "task_default_queue": "lectures", "task_acks_late": True,
            "task_reject_on_worker_lost": True, "worker_deduplicate_successful_tasks": True,
            "task_annotations": "chronos_pipeline.celery_executor.SkipStepsOfEndedRuns",
            "broker_transport_options": {
                "max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5,
                "visibility_timeout": 3600, "unacked_restore_interval": 10,
                "unacked_restore_throttle": 1,
            },
        },
        "retries": {"enabled": {}},
    }
    assert argv[argv.index("-q") + 1] == "lectures" and "--concurrency=2" in argv
    # The worker loads the job with the executor the orchestrator used, on this data dir.
    assert (env["CHRONOS_EXECUTOR"], env["DAGSTER_HOME"]) == (
        "celery", str(settings.dagster_home))
    assert Path(env["PATH"].split(os.pathsep)[0], "celery").is_file()


@dg.op
def lecture_step() -> None:
    """A step for the worker to run (or not)."""


@dg.job
def one_step_job() -> None:
    lecture_step()


def test_a_step_given_again_after_its_run_ended_is_dropped_unrun(tmp_path: Path) -> None:
    from dagster._grpc.types import ExecuteStepArgs
    from dagster._serdes import pack_value
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    settings = Settings.from_env({"CHRONOS_DATA_DIR": str(tmp_path / "data")})
    # The step task as a worker configured by Chronos runs it (here in this process).
    app = make_app(CeleryExecutor.for_cli(
        broker="memory://", backend="cache+memory://",
        config_source=celery_config(settings)["config_source"]).app_args())
    task = create_task(app)
    job = dg.reconstructable(one_step_job)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        ended = one_step_job.execute_in_process(instance=instance).run_id
        waiting = instance.create_run_for_job(one_step_job).run_id

        def deliver(run_id: str) -> str:
            # What dagster-celery's orchestrator puts on the queue for one step.
            step = ExecuteStepArgs(job_origin=job.get_python_origin(), run_id=run_id,
                                   step_keys_to_execute=["lecture_step"],
                                   instance_ref=instance.get_ref())
            outcome = task.apply(kwargs={"execute_step_args_packed": pack_value(step),
                                         "executable_dict": job.to_dict()})
            return str(outcome.state)

        logged = len(instance.all_logs(ended))
        assert deliver(ended) == "IGNORED"
        assert len(instance.all_logs(ended)) == logged  # nothing ran, nothing was written
        # A run still going gets its step run.
        assert deliver(waiting) == "SUCCESS"
        assert {r.dagster_event.event_type_value for r in instance.all_logs(waiting)
                if r.dagster_event is not None} >= {"STEP_START", "STEP_SUCCESS"}


def deploy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_url: str, redis_url: str,
           queue: str, **extra: str) -> Settings:
    """Configured the way a deployment is: through the environment, read once per process."""
    deployment = {
        "CHRONOS_DATA_DIR": str(tmp_path / "data"),
        "CHRONOS_DATABASE_URL": pg_url,
        "CHRONOS_DAGSTER_PG_URL": pg_url,
        "CHRONOS_EXECUTOR": "celery",
        "CHRONOS_CELERY_BROKER_URL": redis_url,
        "CHRONOS_CELERY_QUEUE": queue,
        **extra,
    }
    for key, value in deployment.items():
        monkeypatch.setenv(key, value)
    return Settings.from_env()


def start_worker(stack: ExitStack, settings: Settings, tmp_path: Path,
                 name: str) -> subprocess.Popen[bytes]:
    argv, env = worker_command(settings, name=name)
    log = tmp_path / f"{name}.log"
    process = stack.enter_context(started(argv, env, log))
    wait_for_worker(process, log, name)
    return process


def start_daemon(stack: ExitStack, settings: Settings, tmp_path: Path) -> subprocess.Popen[bytes]:
    return stack.enter_context(dagster_daemon({"DAGSTER_HOME": str(settings.dagster_home)},
                                              tmp_path / "daemon.log"))


def wait_until_settled(services: Services, instance: dg.DagsterInstance, videos: list[str],
                       daemon: subprocess.Popen[bytes], log: Path) -> list[dg.DagsterRun]:
    """Until every lecture is ready or failed and every run has ended; returns the runs."""
    deadline = time.monotonic() + ALL_SETTLED_S
    while True:
        statuses = [services.catalog.find_video(v).status for v in videos]
        if all(s in (VideoStatus.READY, VideoStatus.FAILED) for s in statuses):
            break
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"lectures {statuses}; daemon log:\n{log.read_text()[-3000:]}")
        time.sleep(2)
    # A lecture is ready before its run ends: the asset checks and the run's own
    # bookkeeping follow the embeddings step, so wait for the runs too.
    while True:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="ingest_video"))
        if len(runs) >= len(videos) and all(r.is_finished for r in runs):
            return runs
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"runs {[(r.run_id, r.status) for r in runs]}; daemon log:\n"
                                 f"{log.read_text()[-3000:]}")
        time.sleep(1)


def step_events(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str, str]]:
    """The run's step events in order: (step, event type, Celery worker name or "")."""
    events = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        worker = ""
        if event.event_type_value == "ENGINE_EVENT":
            metadata = event.engine_event_data.metadata
            if "Celery worker" in metadata:
                worker = str(metadata["Celery worker"].value).split("@")[0]
        events.append((event.step_key, event.event_type_value, worker))
    return events


def transcription_records(services: Services, video_id: str) -> int:
    _cols, rows = services.ledger.query(
        "SELECT count(*) FROM cost_records WHERE video_id = ? AND stage = 'transcribe'",
        [video_id])
    return int(rows[0][0])


@pytest.mark.postgres
def test_four_uploads_run_on_two_celery_workers_with_postgres_storage(
    pg_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"chronos_test_{secrets.token_hex(4)}"
    settings = deploy(monkeypatch, tmp_path, pg_url, redis_url, queue)
    services = Services(settings)
    instance = open_instance(settings)
    assert "postgres" in type(instance.run_storage).__module__
    workers = [f"{queue}-w{i}" for i in (1, 2)]
    started_at = time.monotonic()
    try:
        with ExitStack() as stack:
            for name in workers:
                start_worker(stack, settings, tmp_path, name)
            # One upload burst: four lectures confirmed before the daemon looks.
            creator, _ = services.catalog.create_creator("Celery creator")
            videos = []
            for wav in CLIPS:
                clip = speech_video(SPEECH_DIR / wav, tmp_path / f"{Path(wav).stem}.mp4")
                videos.append(services.ingest.ingest_file(creator.id, clip,
                                                          title=Path(wav).stem).id)
            daemon = start_daemon(stack, settings, tmp_path)
            runs = wait_until_settled(services, instance, videos, daemon,
                                      tmp_path / "daemon.log")
        print(f"four lectures settled {time.monotonic() - started_at:.0f} s after the "
              "workers were started")
        statuses = [services.catalog.find_video(v).status for v in videos]
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
            events = step_events(instance, run.run_id)
            started_steps = {step for step, kind, _ in events if kind == "STEP_START"}
            on_worker = {step: worker for step, _, worker in events if worker}
            assert started_steps == set(on_worker) >= {"video", "transcript", "chunks",
                                                        "embeddings"}
            for step, worker in on_worker.items():
                took_work.setdefault(worker, set()).add(f"{run.run_id}:{step}")
        assert set(took_work) == set(workers), took_work
    finally:
        instance.dispose()
        services.close()
        forget_queue(redis_url, queue)


@pytest.mark.postgres
def test_transcription_of_a_killed_worker_runs_again_on_another_and_is_paid_once(
    pg_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"chronos_test_{secrets.token_hex(4)}"
    settings = deploy(monkeypatch, tmp_path, pg_url, redis_url, queue,
                      CHRONOS_CELERY_VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S))
    services = Services(settings)
    instance = open_instance(settings)
    first, second = f"{queue}-w1", f"{queue}-w2"
    started_at = time.monotonic()
    try:
        with ExitStack() as stack:
            # One worker at first, so the transcription is surely on it.
            worker = start_worker(stack, settings, tmp_path, first)
            creator, _ = services.catalog.create_creator("Celery creator")
            # 44 s of speech: the transcription is still going when the worker dies.
            wav = repeated_wav(SPEECH_DIR / "jfk.wav", tmp_path / "jfk_x4.wav", 4)
            video_id = services.ingest.ingest_file(
                creator.id, speech_video(wav, tmp_path / "jfk_x4.mp4"), title="JFK").id
            daemon = start_daemon(stack, settings, tmp_path)
            deadline = time.monotonic() + STEP_STARTED_S
            while services.catalog.find_video(video_id).status is not VideoStatus.TRANSCRIBING:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no transcription on {first}:\n"
                                         f"{(tmp_path / f'{first}.log').read_text()[-3000:]}")
                time.sleep(0.2)
            os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool process
            worker.wait()
            start_worker(stack, settings, tmp_path, second)
            runs = wait_until_settled(services, instance, [video_id], daemon,
                                      tmp_path / "daemon.log")
        print(f"lecture settled {time.monotonic() - started_at:.0f} s after the first worker "
              "was started")
        video = services.catalog.find_video(video_id)
        assert video.status is VideoStatus.READY, video.error_message
        assert services.vectors.count(video_id) == len(load_chunks(services, video)) > 0
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]
        events = step_events(instance, runs[0].run_id)
        transcript = [(kind, worker) for step, kind, worker in events if step == "transcript"]
        # Started on the first worker, never finished there; run again on the second.
        assert [worker for _, worker in transcript if worker] == [first, second]
        assert [kind for kind, _ in transcript].count("STEP_START") == 2
        assert [kind for kind, _ in transcript].count("STEP_SUCCESS") == 1
        assert transcription_records(services, video_id) == 1
        # The run gave back its transcription slot: the next lecture does not wait for it.
        pool = instance.event_log_storage.get_concurrency_info(TRANSCRIPTION)
        assert pool.claimed_slots == [] and pool.pending_steps == []
    finally:
        instance.dispose()
        services.close()
        forget_queue(redis_url, queue)
