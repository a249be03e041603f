"""The ledger at scale: appends, budget checks, month to date and the dashboard, against the
same queries over ONE Parquet file, in the same run.

How the ledger is made. ``APPENDS`` calls go through ``Ledger.record`` exactly as the chat
and the pipeline write them (one file per call, fsync, totals counted); their latency is the
append figure, against a JSON-lines append with fsync as the baseline. The rest of the
records, to reach RECORDS, are real priced records (``Ledger.price``) appended through the
same ``Ledger.append`` in batches of one day's calls (one file per batch, not per call:
one file per call would take hours on two cores for 1 M records); then ``compact_ledger``
folds everything exactly as the schedule does in production. 50 creators, the busiest with a
fifth of the records, over 45 days; the timed queries are the busiest creator's.

Usage: ``python -m benchmarks.ledger_scale [RECORDS] [APPENDS]`` (defaults 100000, 500).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from chronos_pipeline.lib import costs
from chronos_pipeline.lib.budgets import Budgets
from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.dashboard import DashboardFilters, build_dashboard
from chronos_pipeline.lib.ledger import SCHEMA, CostRecord, Ledger, Usage
from chronos_pipeline.lib.ledger_compaction import compact_ledger
from chronos_pipeline.lib.ledger_totals import LedgerTotals
from chronos_pipeline.lib.pricing import PriceTable

DAYS = 45
BATCH_CALLS = 500
CALLS = [
    ("transcribe", "openai", "whisper-1", {"audio_second": 600.0}),
    ("embed", "openai", "text-embedding-3-small", {"input_token": 40_000.0}),
    ("embed", "local", "sentence-transformers/all-MiniLM-L6-v2", {"input_token": 40_000.0}),
    ("query-embed", "local", "sentence-transformers/all-MiniLM-L6-v2", {"input_token": 20.0}),
    ("chat", "anthropic", "claude-haiku-4-5", {"input_token": 3000.0, "output_token": 400.0}),
    ("chat", "local", "chronos-extractive-v1", {"input_token": 3000.0, "output_token": 400.0}),
]


def _timed(function: Callable[[], object], runs: int) -> list[float]:
    function()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


class World:
    def __init__(self, root: Path) -> None:
        self.catalog = Catalog(f"sqlite:///{root / 'catalog.sqlite3'}")
        self.ledger = Ledger(root / "ledger", PriceTable.load(),
                             totals=LedgerTotals(self.catalog))
        self.rng = random.Random(7)
        self.creators = [self.catalog.create_creator(f"Creator {i}")[0].id for i in range(50)]
        self.busy = self.creators[0]
        course = self.catalog.create_course(self.busy, "Course")
        self.videos = [self.catalog.create_video(self.busy, f"Lecture {i}", course.id).id
                       for i in range(40)]
        self.sessions = [self.catalog.create_chat_session(self.busy, course.id).id
                         for _ in range(20)]
        self.catalog.set_budget(self.busy, Decimal("1000000"))
        self.message = 0

    def call(self, when: datetime) -> tuple[Usage, dict[str, object]]:
        stage, provider, model, units = self.rng.choice(CALLS)
        creator = self.busy if self.rng.random() < 0.2 else self.rng.choice(self.creators)
        context: dict[str, object] = {"creator_id": creator, "stage": stage,
                                      "occurred_at": when}
        if stage in ("transcribe", "embed"):
            context["video_id"] = self.rng.choice(self.videos)
        else:
            self.message += 1
            context["chat_session_id"] = self.rng.choice(self.sessions)
            context["student_id"] = f"st_{self.rng.randrange(200):016x}"
            context["message_id"] = f"cm_{self.message:016x}"
        quantities = {u: round(q * self.rng.uniform(0.5, 1.5), 3) for u, q in units.items()}
        return Usage(provider, model, quantities), context


def generate(world: World, records: int, appends: int, now: datetime) -> list[float]:
    """Fill the ledger; returns the latency of each production append."""
    latencies = []
    written = 0
    for _ in range(appends):
        usage, context = world.call(now - timedelta(seconds=world.rng.uniform(0, 3600)))
        started = time.perf_counter()
        written += len(world.ledger.record(usage, **context))  # type: ignore[arg-type]
        latencies.append(time.perf_counter() - started)
    per_day = max(1, (records - written) // DAYS)
    for day in range(DAYS):
        start = (now - timedelta(days=day)).replace(hour=0, minute=0, second=0, microsecond=0)
        span = min(86_399.0, max(1.0, (now - start).total_seconds() - 1))
        batch: list[CostRecord] = []
        target = per_day if day < DAYS - 1 else records - written
        made = 0
        while made < target:
            usage, context = world.call(start + timedelta(seconds=world.rng.uniform(0, span)))
            priced = world.ledger.price(usage, **context)  # type: ignore[arg-type]
            batch += priced
            made += len(priced)
            if len(batch) >= BATCH_CALLS:
                world.ledger.append(batch)
                batch = []
        if batch:
            world.ledger.append(batch)
        written += made
    return latencies


def jsonl_baseline(path: Path, runs: int) -> list[float]:
    """One line per call appended to a JSON-lines file with fsync: the cheapest durable append."""
    times = []
    line = json.dumps({"record_id": "x" * 24, "creator_id": "cr_0123456789abcdef",
                       "quantity": "3000", "cost_usd": "0.003"}) + "\n"
    with open(path, "a") as handle:
        for _ in range(runs):
            started = time.perf_counter()
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
            times.append(time.perf_counter() - started)
    return times


def one_file_copy(ledger: Ledger, root: Path) -> Ledger:
    """The same rows in ONE Parquet file, read by a Ledger that keeps no totals."""
    with ledger.connect() as connection:
        table = connection.sql("SELECT * FROM cost_records ORDER BY occurred_at").to_arrow_table()
    (root / "day=all").mkdir(parents=True)
    pq.write_table(table.cast(SCHEMA), root / "day=all" / "ledger.parquet")
    return Ledger(root, ledger.prices)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    records = int(args[0]) if args else 100_000
    appends = int(args[1]) if len(args) > 1 else 500
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp))
        started = time.perf_counter()
        append_times = generate(world, records, appends, now)
        generated = time.perf_counter() - started
        files_before = len(list(world.ledger.root.glob("day=*/*.parquet")))
        report = compact_ledger(world.ledger, now=now)
        baseline_appends = jsonl_baseline(Path(tmp) / "baseline.jsonl", appends)
        single = one_file_copy(world.ledger, Path(tmp) / "single")
        _, ((total,),) = world.ledger.query("SELECT count(*) FROM cost_records")
        _, ((busy,),) = world.ledger.query(
            "SELECT count(*) FROM cost_records WHERE creator_id = ?", [world.busy])

        kept_budgets = Budgets(world.catalog, world.ledger)
        summed_budgets = Budgets(world.catalog, single)
        filters = DashboardFilters()
        rows = [
            ("append (Ledger.record, 1 call)", append_times, baseline_appends,
             "JSON-lines + fsync"),
            ("budget check (Budgets.enforce)",
             _timed(lambda: kept_budgets.enforce(world.busy), 200),
             _timed(lambda: summed_budgets.enforce(world.busy), 20), "SUM over 1 file"),
            ("month to date (costs.month_to_date)",
             _timed(lambda: costs.month_to_date(world.ledger, world.busy, now), 200),
             _timed(lambda: costs.month_to_date(single, world.busy, now), 20),
             "SUM over 1 file"),
            ("dashboard (build_dashboard)",
             _timed(lambda: build_dashboard(world.ledger, world.catalog, world.busy, filters,
                                            now=now), 30),
             _timed(lambda: build_dashboard(single, world.catalog, world.busy, filters,
                                            now=now), 30), "same over 1 file"),
        ]
        assert kept_budgets.spent_this_month(world.busy, now) == \
            summed_budgets.spent_this_month(world.busy, now)
        files_after = len(list(world.ledger.root.glob("day=*/*.parquet")))
        world.catalog.close()

    print(f"{total:,} records ({busy:,} of the busiest creator, {DAYS} days, 50 creators); "
          f"generated in {generated:.0f} s; {appends} of them as production appends")
    print(f"compaction: {files_before:,} files -> {files_after:,} in {report.seconds:.2f} s")
    print(f"{'operation':<38}{'median ms':>10}{'p95 ms':>9}   {'baseline':<20}"
          f"{'median ms':>10}{'p95 ms':>9}{'ratio':>9}")
    for label, ours, theirs, name in rows:
        ratio = statistics.median(theirs) / statistics.median(ours)
        print(f"{label:<38}{statistics.median(ours) * 1000:>10.3f}{_p95(ours) * 1000:>9.3f}   "
              f"{name:<20}{statistics.median(theirs) * 1000:>10.3f}"
              f"{_p95(theirs) * 1000:>9.3f}{ratio:>8.2f}x")
    print("ratio = baseline median / ours (above 1: ours is faster)")


if __name__ == "__main__":
    main()
