"""Fold the ledger's per-call files into per-day files, crash-safe and unseen by readers.

Why per day, not per hour. Readers open one file per (day, part): with per-day files a
year of history is ~365 files, and a dashboard's 30-day window reads ~30 of them — DuckDB
spends its time in those files' footers, not in the rows, so fewer files is what makes it
fast. Per-hour files would multiply that by 24 for no gain: the write cost of compaction is
bounded another way. Today's (and yesterday's, where late records still land) small files
are folded into a new *part* of the day (``c-…``) each run, leaving earlier parts alone, so a
run rewrites only the minutes since the last one; once a day has more than ``max_parts``
parts, or is over (before yesterday), its parts and files are merged into one file. Rows are
sorted by creator and time, so a creator's query skips other creators' row groups.

Crash safety (``ledger_layout`` draws the layout). The new view is built out of sight —
hard links to the files kept, new ``c-`` files written whole and fsynced — then, holding the
ledger lock exclusive, the files appended since the listing are linked in and the ``ledger``
symlink is swapped in one ``rename``. A kill at any moment leaves either the old view or the
new one current, each holding every record exactly once; the leftovers (an unfinished view,
a finished one never swapped in) are removed by the next run. Appends wait only for that
short locked step, never for the merge itself.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from chronos_pipeline.lib.ledger import SCHEMA, Ledger, typed_columns
from chronos_pipeline.lib.ledger_layout import (
    APPENDED_PREFIX,
    COMPACTED_PREFIX,
    flocked,
    fsync_dir,
    try_flock,
)
from chronos_pipeline.lib.ledger_totals import LedgerTotals

GRACE_S = 600.0
MAX_PARTS = 8
ROW_GROUP_ROWS = 32_768


@dataclass(frozen=True)
class CompactionReport:
    """What one run did (``skipped`` when another compactor was already at work)."""

    skipped: bool = False
    view: str | None = None
    days: list[str] = field(default_factory=list)
    files_before: int = 0
    files_after: int = 0
    records_rewritten: int = 0
    appended_meanwhile: int = 0
    reconciled_calls: int = 0
    removed: int = 0
    seconds: float = 0.0


def _listing(view: Path) -> dict[str, list[str]]:
    """The view's finished files per day (temporary files start with a dot)."""
    days: dict[str, list[str]] = {}
    for day in sorted(view.glob("day=*")):
        if day.is_dir():
            days[day.name] = sorted(n for n in os.listdir(day)
                                    if n.endswith(".parquet") and not n.startswith("."))
    return days


def _is_current_format(name: str) -> bool:
    return name.startswith((APPENDED_PREFIX, COMPACTED_PREFIX))


def plan(listing: dict[str, list[str]], today: date, max_parts: int = MAX_PARTS,
         ) -> dict[str, list[str]]:
    """Which files of each day to merge into one (see the module's docstring)."""
    merges: dict[str, list[str]] = {}
    for day, names in listing.items():
        try:
            when = date.fromisoformat(day.removeprefix("day="))
        except ValueError:
            continue
        # Files written before call ids and decimal quantities are always rewritten.
        older = [n for n in names if not _is_current_format(n)]
        small = [n for n in names if not n.startswith(COMPACTED_PREFIX)]
        parts = [n for n in names if n.startswith(COMPACTED_PREFIX)]
        if when < today - timedelta(days=1):
            merge = names if len(names) > 1 or older else []
        elif len(parts) + (1 if small else 0) > max_parts:
            merge = names
        elif len(small) >= 2 or older:
            merge = small
        else:
            merge = []
        if merge:
            merges[day] = merge
    return merges


def _read(connection: duckdb.DuckDBPyConnection, files: list[Path]) -> pa.Table:
    connection.register("_empty", SCHEMA.empty_table())
    paths = [str(f) for f in files]
    return connection.sql(
        f"SELECT {typed_columns()} FROM (SELECT * FROM _empty UNION ALL BY NAME "
        "SELECT * FROM read_parquet(?::VARCHAR[], hive_partitioning = false, "
        "union_by_name = true))", params=[paths],
    ).to_arrow_table()


def merge_files(sources: list[Path], directory: Path) -> tuple[Path, int]:
    """Write the sources' records as one ``c-`` file in ``directory``, whole and fsynced."""
    with duckdb.connect(":memory:") as connection:
        connection.execute("SET TimeZone = 'UTC'")
        # Current files have decimal quantities, older ones floats: read apart, or DuckDB
        # widens every quantity to DOUBLE.
        groups = [[s for s in sources if _is_current_format(s.name)],
                  [s for s in sources if not _is_current_format(s.name)]]
        tables = [_read(connection, group).cast(SCHEMA) for group in groups if group]
    table = pa.concat_tables(tables).sort_by(
        [("creator_id", "ascending"), ("occurred_at", "ascending"), ("record_id", "ascending")])
    name = f"{COMPACTED_PREFIX}{int(time.time() * 1000)}-{secrets.token_hex(6)}.parquet"
    temporary = directory / f".{name}.tmp"
    pq.write_table(table, temporary, row_group_size=ROW_GROUP_ROWS)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    target = directory / name
    os.replace(temporary, target)
    return target, table.num_rows


def compact_ledger(ledger: Ledger, *, now: datetime | None = None, grace_s: float = GRACE_S,
                   max_parts: int = MAX_PARTS, reconcile: bool = True) -> CompactionReport:
    """Compact the ledger once, then count any call the maintained totals missed."""
    started = time.perf_counter()
    layout = ledger.layout
    layout.store.mkdir(parents=True, exist_ok=True)
    held = try_flock(layout.compactor_lock_path)
    if held is None:
        return CompactionReport(skipped=True)
    try:
        layout.adopt_legacy_estimates()
        with flocked(layout.lock_path, fcntl.LOCK_EX):
            layout.ensure_root_if_views()
        removed = layout.collect_garbage(grace_s)
        with flocked(layout.lock_path, fcntl.LOCK_SH):
            current = layout.current()
            legacy = layout.is_legacy()
        report = CompactionReport(removed=removed)
        if current is not None:
            report = _compact(ledger, current, legacy, now or datetime.now(UTC), max_parts,
                              removed)
        reconciled = 0
        if reconcile and isinstance(ledger.totals, LedgerTotals):
            today = (now or datetime.now(UTC)).astimezone(UTC)
            previous_month = (today.replace(day=1) - timedelta(days=1)).replace(
                day=1, hour=0, minute=0, second=0, microsecond=0)
            reconciled = ledger.totals.reconcile(ledger, since=previous_month)
        return CompactionReport(**{**report.__dict__, "reconciled_calls": reconciled,
                                   "seconds": time.perf_counter() - started})
    finally:
        os.close(held)


def _compact(ledger: Ledger, current: Path, legacy: bool, now: datetime, max_parts: int,
             removed: int) -> CompactionReport:
    layout = ledger.layout
    listing = _listing(current)
    merges = plan(listing, now.astimezone(UTC).date(), max_parts)
    files_before = sum(len(n) for n in listing.values())
    if not merges and not legacy:
        return CompactionReport(view=current.name, files_before=files_before,
                                files_after=files_before, removed=removed)
    temp = layout.temp_view()
    rewritten = 0
    for day, names in listing.items():
        (temp / day).mkdir()
        merged = set(merges.get(day, ()))
        for name in names:
            if name not in merged:
                os.link(current / day / name, temp / day / name)
        if merged:
            _, rows = merge_files([current / day / n for n in names if n in merged], temp / day)
            rewritten += rows
        fsync_dir(temp / day)
    fsync_dir(temp)
    late = 0
    with flocked(layout.lock_path, fcntl.LOCK_EX):
        # Files appended since the listing: link them in too (appends now wait for us).
        for day_dir in current.glob("day=*"):
            seen = set(listing.get(day_dir.name, ()))
            new = [n for n in os.listdir(day_dir)
                   if n.endswith(".parquet") and not n.startswith(".") and n not in seen]
            if not new:
                continue
            (temp / day_dir.name).mkdir(exist_ok=True)
            for name in new:
                os.link(day_dir / name, temp / day_dir.name / name)
            fsync_dir(temp / day_dir.name)
            late += len(new)
        fsync_dir(temp)
        final = layout.views / layout.next_view_name()
        os.rename(temp, final)
        fsync_dir(layout.views)
        layout.point_root(final)
    return CompactionReport(
        view=final.name, days=sorted(merges), files_before=files_before,
        files_after=sum(1 for _ in final.glob("day=*/*.parquet")),
        records_rewritten=rewritten, appended_meanwhile=late, removed=removed,
    )
