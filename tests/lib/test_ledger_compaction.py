"""Compaction folds the ledger's small files without losing, doubling or hiding a record —
even when the compactor is killed (SIGKILL) at a random moment while another process appends
and readers read."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chronos_pipeline.lib import costs
from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.ledger import SCHEMA, Ledger, Usage
from chronos_pipeline.lib.ledger_compaction import compact_ledger, plan
from chronos_pipeline.lib.ledger_totals import LedgerTotals
from chronos_pipeline.lib.pricing import PriceTable
from tests.lib.ledger_worker import open_ledger

CREATOR = "cr_0123456789abcdef"
TRIALS = 24
REPO = Path(__file__).resolve().parents[2]


def _state(ledger: Ledger) -> tuple[set[str], int, Decimal]:
    _, rows = ledger.query("SELECT record_id, cost_usd FROM cost_records")
    ids = [r for r, _ in rows]
    return set(ids), len(ids), sum((Decimal(c) for _, c in rows), Decimal(0))


def _plain_read(root: Path, pattern: str) -> tuple[int, int]:
    """What an analyst's DuckDB sees: (records, distinct record ids)."""
    glob = str(root / pattern).replace("'", "''")
    with duckdb.connect() as connection:
        row = connection.execute(
            f"SELECT count(*), count(DISTINCT record_id) FROM read_parquet('{glob}', "
            "union_by_name = true)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")  # migrated once, here
    catalog.close()
    yield tmp_path


def _seed(ledger: Ledger, now: datetime) -> None:
    rng = random.Random(3)
    for n in range(60):
        ledger.record(Usage("openai", "text-embedding-3-small", {"input_token": 1000 + n}),
                      creator_id=CREATOR, stage="embed", video_id="vd_0123456789abcdef",
                      occurred_at=now - timedelta(days=rng.choice([0, 0, 1, 3, 40]),
                                                  minutes=rng.randint(0, 600)))


def _worker(*args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.lib.ledger_worker", *args], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def test_compaction_killed_at_random_moments_never_loses_or_doubles_a_record(
    data: Path,
) -> None:
    ledger = open_ledger(data)
    _seed(ledger, datetime.now(UTC))
    expected, _, seed_total = _state(ledger)
    # Each appender's 12 calls: (100 + n) input tokens at $1/M and 7 output at $5/M.
    per_trial = sum(Decimal(100 + n) / 10**6 + Decimal(35) / 10**6 for n in range(12))
    rng = random.Random(11)
    plain_errors = 0
    views_seen: set[str] = set()
    for trial in range(TRIALS):
        appender = _worker("append", str(data), "12", CREATOR)
        compactor = _worker("compact", str(data))
        deadline = time.monotonic() + rng.uniform(0.02, 0.8)
        while time.monotonic() < deadline:
            # Readers in between: never a record twice. Through Ledger.connect() never an
            # error either; a plain glob may list a file the swap then removes (an error,
            # never a wrong sum).
            ids, count, _ = _state(ledger)
            assert count == len(ids)
            for pattern in ("**/*.parquet", "day=*/*.parquet"):
                try:
                    records, distinct = _plain_read(ledger.root, pattern)
                except duckdb.IOException:
                    plain_errors += 1
                    continue
                assert records == distinct
            views_seen.add(os.readlink(ledger.root))
        compactor.send_signal(signal.SIGKILL)
        compactor.wait()
        out, _ = appender.communicate(timeout=120)
        assert appender.returncode == 0
        for line in out.split("\n"):
            expected.update(line.split())
        ids, count, total = _state(ledger)
        assert count == len(ids), f"trial {trial}: a record is counted twice"
        assert ids == expected, f"trial {trial}: lost {len(expected - ids)} record(s)"
        assert total == seed_total + (trial + 1) * per_trial
    # After the last kill a clean run repairs everything (leftovers go, totals catch up).
    report = compact_ledger(ledger, grace_s=0)
    assert not report.skipped
    ids, count, total = _state(ledger)
    assert ids == expected and count == len(expected)
    assert total == seed_total + TRIALS * per_trial
    assert isinstance(ledger.totals, LedgerTotals)
    assert ledger.totals.check(ledger) == []
    spent = ledger.totals.spent(ledger, CREATOR, datetime.now(UTC).strftime("%Y-%m"))
    _, rows = ledger.query("SELECT sum(cost_usd) FROM cost_records WHERE occurred_at >= ?",
                           [costs.month_start()])
    assert spent == Decimal(rows[0][0])
    assert len(views_seen) > 3, "the compactor should have swapped views during the trials"
    files = list(ledger.root.glob("day=*/*.parquet"))
    assert len(files) <= 2 * len({f.parent for f in files})
    print(f"{TRIALS} kills, {len(views_seen)} views seen, {plain_errors} plain-glob read "
          "errors (never a double count)")


def test_appends_during_a_compaction_are_kept(data: Path) -> None:
    ledger = open_ledger(data)
    _seed(ledger, datetime.now(UTC))
    before, _, before_total = _state(ledger)
    written: list[str] = []
    stop = threading.Event()

    def append() -> None:
        n = 0
        while not stop.is_set():
            records = ledger.record(Usage("anthropic", "claude-haiku-4-5", {"output_token": n + 1}),
                                    creator_id=CREATOR, stage="chat")
            written.extend(r.record_id for r in records)
            n += 1

    thread = threading.Thread(target=append)
    thread.start()
    try:
        for _ in range(6):
            compact_ledger(ledger, grace_s=0, max_parts=2)
    finally:
        stop.set()
        thread.join()
    ids, count, total = _state(ledger)
    assert ids == before | set(written) and count == len(ids)
    _, rows = ledger.query("SELECT sum(cost_usd) FROM cost_records WHERE stage = 'chat'")
    assert total == before_total + Decimal(rows[0][0])


def test_a_compacted_ledger_reads_the_same_and_has_one_file_per_past_day(data: Path) -> None:
    ledger = open_ledger(data)
    now = datetime.now(UTC)
    _seed(ledger, now)
    with ledger.connect() as connection:
        before = connection.sql("SELECT * FROM cost_records ORDER BY record_id").fetchall()
    report = compact_ledger(ledger, now=now, grace_s=0)
    assert report.files_after < report.files_before
    with ledger.connect() as connection:
        after = connection.sql("SELECT * FROM cost_records ORDER BY record_id").fetchall()
    assert after == before
    past = [d for d in ledger.root.glob("day=*")
            if d.name < f"day={(now - timedelta(days=1)).date()}"]
    assert past and all(len(list(d.glob("*.parquet"))) == 1 for d in past)
    compacted = next(past[0].glob("*.parquet"))
    assert pq.read_schema(compacted).field("quantity").type == pa.decimal128(38, 12)
    # A second run with nothing new to fold changes nothing.
    again = compact_ledger(ledger, now=now, grace_s=0)
    assert again.days == [] and again.view == report.view


def test_todays_small_files_become_parts_and_too_many_parts_merge_into_one() -> None:
    today = datetime(2026, 11, 20, tzinfo=UTC).date()
    day = "day=2026-11-20"
    assert plan({day: ["a-1.parquet", "a-2.parquet", "c-1.parquet"]}, today) == {
        day: ["a-1.parquet", "a-2.parquet"]}
    assert plan({day: ["a-1.parquet", "c-1.parquet"]}, today) == {}
    parts = [f"c-{n}.parquet" for n in range(8)]
    assert plan({day: ["a-1.parquet", *parts]}, today, max_parts=8) == {
        day: ["a-1.parquet", *parts]}
    assert plan({"day=2026-11-10": ["a-1.parquet", "c-1.parquet"]}, today) == {
        "day=2026-11-10": ["a-1.parquet", "c-1.parquet"]}
    assert plan({"day=2026-11-10": ["173835868990-ab.parquet"]}, today) == {
        "day=2026-11-10": ["173835868990-ab.parquet"]}


def test_a_ledger_from_before_views_is_migrated_and_its_estimates_moved_out(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ledger"
    ledger = Ledger(root, PriceTable.load())
    # As the previous version wrote it: a real folder, float quantities, estimates inside.
    old_schema = pa.schema([pa.field("quantity", pa.float64()) if f.name == "quantity" else f
                            for f in SCHEMA if f.name != "call_id"])
    for day in (10, 11):
        records = ledger.price(Usage("openai", "text-embedding-3-small",
                                     {"input_token": 2100.5}),
                               creator_id=CREATOR, stage="embed", run_id="r1",
                               video_id="vd_0123456789abcdef",
                               occurred_at=datetime(2026, 11, day, tzinfo=UTC))
        rows = [{**{k: getattr(r, k) for k in old_schema.names},
                 "quantity": float(r.quantity)} for r in records]
        (root / f"day=2026-11-{day}").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=old_schema),
                       root / f"day=2026-11-{day}" / "101010101010-abcdef.parquet")
    # An estimate where the old version kept them, in the old version's schema.
    (root / "estimates").mkdir()
    estimate_schema = pa.schema([f for f in costs.ESTIMATES_SCHEMA if f.name in (
        "estimate_id", "created_at", "kind", "creator_id", "provider", "model", "videos",
        "tokens", "estimated_usd", "price_table_version")])
    pq.write_table(pa.Table.from_pylist([{
        "estimate_id": "00000000000000ab", "created_at": datetime(2026, 11, 1, tzinfo=UTC),
        "kind": "reembed", "creator_id": None, "provider": "openai",
        "model": "text-embedding-3-small", "videos": 1, "tokens": 4200.0,
        "estimated_usd": Decimal("0.000084"), "price_table_version": "2026-11-01",
    }], schema=estimate_schema), root / "estimates" / "00000000000000ab.parquet")
    ledger.record(Usage("openai", "text-embedding-3-small", {"input_token": 10}),
                  creator_id=CREATOR, stage="embed", occurred_at=datetime(2026, 11, 11,
                                                                           tzinfo=UTC))
    _, before = ledger.query("SELECT count(*), sum(quantity), sum(cost_usd) FROM cost_records")

    compact_ledger(ledger, now=datetime(2026, 11, 20, tzinfo=UTC), grace_s=0)

    assert root.is_symlink() and not (root / "estimates").exists()
    _, after = ledger.query("SELECT count(*), sum(quantity), sum(cost_usd) FROM cost_records")
    assert after == before == [(3, Decimal("4211"), Decimal("0.00008422"))]
    assert _plain_read(root, "**/*.parquet") == (3, 3)
    [row] = costs.estimates_against_actual(ledger).as_dicts()
    assert (row["estimate_id"], row["paired_by"], row["actual_tokens"]) == (
        "00000000000000ab", "model+time", Decimal("4211"))
