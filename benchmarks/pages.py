"""Server time of the web app's pages with 10,000 cost records on the ledger.

A creator with a course of five lectures, a few students and chat sessions; 10,000 cost
records written through ``Ledger.record`` one call at a time, exactly as the pipeline and
the chat write them (one file each), over the last 30 days. Each page is requested through
Litestar's in-process test client (no network), signed in with a session cookie, and
timed median/P95 over ``RUNS`` requests — before compaction (10,000 small files) and after
``compact_ledger`` folds them as the schedule does. The baseline, in the same run, is
``GET /health``: what the framework and the test client cost with no work at all.

Usage: ``python -m benchmarks.pages [RECORDS]`` (default 10000).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.ledger_compaction import compact_ledger
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings

RUNS = 15
CALLS = [
    ("transcribe", Usage("openai", "whisper-1", {"audio_second": 600.0})),
    ("embed", Usage("openai", "text-embedding-3-small", {"input_token": 40_000.0})),
    ("query-embed", Usage("local", "sentence-transformers/all-MiniLM-L6-v2",
                          {"input_token": 20.0})),
    ("chat", Usage("anthropic", "claude-haiku-4-5",
                   {"input_token": 3000.0, "output_token": 400.0})),
]


def _time(client: TestClient, path: str) -> tuple[float, float]:  # type: ignore[type-arg]
    client.get(path)  # warm-up
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main(records: int = 10_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"CHRONOS_DATA_DIR": str(Path(tmp) / "data")})
        services = Services(settings)
        catalog = services.catalog
        creator, key = catalog.create_creator("Bench creator")
        course = catalog.create_course(creator.id, "Course")
        videos = []
        for i in range(5):
            video = catalog.create_video(creator.id, f"Lecture {i + 1}", course.id)
            catalog.set_status(video.id, VideoStatus.READY)
            videos.append(video.id)
        students = [catalog.create_student(creator.id, f"Student {i}", (course.id,))[0].id
                    for i in range(5)]
        sessions = [catalog.create_chat_session(creator.id, course.id, title=f"Q {i}").id
                    for i in range(20)]
        rng = random.Random(7)
        now = datetime.now(UTC)
        started = time.perf_counter()
        written = 0
        while written < records:
            stage, usage = rng.choice(CALLS)
            when = now - timedelta(seconds=rng.uniform(0, 29 * 86400))
            context: dict[str, object] = {"creator_id": creator.id, "stage": stage,
                                          "occurred_at": when}
            if stage in ("transcribe", "embed"):
                context["video_id"] = rng.choice(videos)
            else:
                context["chat_session_id"] = rng.choice(sessions)
                context["student_id"] = rng.choice(students)
            written += len(services.ledger.record(usage, **context))
        print(f"{written} records written one call at a time in "
              f"{time.perf_counter() - started:.0f} s")

        app = create_app(services=services)
        pages = ["/app", f"/app/courses/{course.id}", f"/app/lectures/{videos[0]}",
                 "/app/chat", f"/app/chat/{sessions[0]}", "/app/usage",
                 f"/app/usage?course_id={course.id}"]
        with TestClient(app) as client:
            signed = client.post("/signin", data={"api_key": key}, follow_redirects=False)
            assert signed.status_code == 303
            for label in ("per-call files", "compacted"):
                if label == "compacted":
                    report = compact_ledger(services.ledger, now=now + timedelta(days=2))
                    print(f"\ncompacted: {report}")
                health = _time(client, "/health")
                print(f"\n== {label}: baseline GET /health median {health[0] * 1000:.1f} ms")
                print(f"{'page':42} {'median ms':>10} {'P95 ms':>8} {'× health':>9}")
                for path in pages:
                    median, p95 = _time(client, path)
                    print(f"{path[:42]:42} {median * 1000:10.1f} {p95 * 1000:8.1f} "
                          f"{median / health[0]:9.1f}")
        services.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
