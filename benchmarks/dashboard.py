"""Dashboard latency over the ledger as production writes it, against one compacted file.

10,000 records are written through the real ``Ledger`` (one Parquet file per provider call,
as the pipeline and chat write them), then ``build_dashboard`` is timed over those files and,
in the same run, over the same rows copied into a single Parquet file.

Usage: ``python -m benchmarks.dashboard [RECORDS]``
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.dashboard import DashboardFilters, build_dashboard
from chronos_pipeline.lib.ledger import SCHEMA, Ledger, Usage
from chronos_pipeline.lib.pricing import PriceTable

RUNS = 5
# (stage, provider, model, unit, typical quantity): one unit per call, so one record a file.
CALLS = [
    ("transcribe", "local", "faster-whisper/tiny.en", "audio_second", 1800.0),
    ("transcribe", "openai", "whisper-1", "audio_second", 600.0),
    ("embed", "local", "sentence-transformers/all-MiniLM-L6-v2", "input_token", 40_000.0),
    ("embed", "openai", "text-embedding-3-small", "input_token", 40_000.0),
    ("query-embed", "local", "sentence-transformers/all-MiniLM-L6-v2", "input_token", 20.0),
    ("chat", "anthropic", "claude-haiku-4-5", "input_token", 3000.0),
    ("chat", "anthropic", "claude-haiku-4-5", "output_token", 400.0),
    ("chat", "local", "chronos-extractive-v1", "input_token", 3000.0),
]


def write_ledger(ledger: Ledger, catalog: Catalog, records: int, now: datetime) -> str:
    """Write ``records`` single-record calls for one busy creator and a neighbour."""
    rng = random.Random(7)
    creator, _ = catalog.create_creator("Busy creator")
    neighbour, _ = catalog.create_creator("Neighbour")
    course = catalog.create_course(creator.id, "Course")
    videos = [catalog.create_video(creator.id, f"Lecture {i}", course.id).id for i in range(40)]
    sessions = [catalog.create_chat_session(creator.id, course.id).id for _ in range(20)]
    students = [f"st_{i:016x}" for i in range(200)]
    catalog.set_budget(creator.id, Decimal("50"))
    for n in range(records):
        stage, provider, model, unit, quantity = rng.choice(CALLS)
        context: dict[str, str] = {}
        if stage in ("transcribe", "embed"):
            context["video_id"] = rng.choice(videos)
        else:
            context["chat_session_id"] = rng.choice(sessions)
            context["student_id"] = rng.choice(students)
            context["message_id"] = f"cm_{n:016x}"
        ledger.record(
            Usage(provider, model, {unit: round(quantity * rng.uniform(0.5, 1.5), 3)}),
            creator_id=creator.id if rng.random() < 0.9 else neighbour.id, stage=stage,
            occurred_at=now - timedelta(minutes=rng.uniform(0, 45 * 24 * 60)), **context,
        )
    return creator.id


def compact_copy(ledger: Ledger, root: Path) -> Ledger:
    """The same rows in ONE Parquet file, read by a second Ledger."""
    with ledger.connect() as connection:
        table = connection.sql("SELECT * FROM cost_records ORDER BY occurred_at").to_arrow_table()
    (root / "day=all").mkdir(parents=True)
    pq.write_table(table.cast(SCHEMA), root / "day=all" / "ledger.parquet")
    return Ledger(root, ledger.prices)


def median_seconds(ledger: Ledger, catalog: Catalog, creator_id: str, now: datetime) -> float:
    build_dashboard(ledger, catalog, creator_id, DashboardFilters(), now=now)  # warm-up
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        build_dashboard(ledger, catalog, creator_id, DashboardFilters(), now=now)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    records = int(args[0]) if args else 10_000
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        prices = PriceTable.load()
        catalog = Catalog(f"sqlite:///{Path(tmp) / 'catalog.sqlite3'}")
        per_call = Ledger(Path(tmp) / "ledger", prices)
        started = time.perf_counter()
        creator_id = write_ledger(per_call, catalog, records, now)
        wrote = time.perf_counter() - started
        files = len(list(per_call.root.glob("day=*/*.parquet")))
        compacted = compact_copy(per_call, Path(tmp) / "compacted")
        slow = median_seconds(per_call, catalog, creator_id, now)
        fast = median_seconds(compacted, catalog, creator_id, now)
        board = build_dashboard(compacted, catalog, creator_id, DashboardFilters(), now=now)
        catalog.close()
    print(f"wrote {records} records in {files} files in {wrote:.1f} s "
          f"(dashboard shows {board.period_records} of them: last 30 days, one creator)")
    print(f"build_dashboard, median of {RUNS}:")
    for label, seconds in ((f"{files} per-call files", slow), ("1 compacted file", fast)):
        print(f"  {label:<22} {seconds * 1000:8.1f} ms")
    print(f"  {'ratio':<22} {slow / fast:8.1f} x")
    if slow > 1.0:
        print("  over 1 s on per-call files: the ledger needs compaction")


if __name__ == "__main__":
    main()
