"""The cost ledger: one record per billable event, as append-only Parquet, read by DuckDB.

Records are written when the provider call returns, so a step that fails later still
leaves its spend. Each append is a new file ``ledger/day=YYYY-MM-DD/a-….parquet``, renamed
into place whole; the compactor (``ledger_compaction``) later folds a day's small files into
one, swapping the whole view at once (``ledger_layout`` tells how readers never see a
record twice). DuckDB reads the current view through the ``cost_records`` view.

Every record names its provider call (``call_id``, shared by the call's per-unit records)
and keeps its quantity as an exact decimal. A ledger given ``totals`` also keeps the
per-creator and per-student month-to-date totals in step with each append
(``ledger_totals``), so budget checks never read the files.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.ledger_layout import (
    APPENDED_PREFIX,
    LedgerLayout,
    flocked,
    fsync_dir,
)
from chronos_pipeline.lib.pricing import PriceTable

log = logging.getLogger(__name__)

MONEY = pa.decimal128(38, 12)
# Quantities keep their exact value too: 12 decimal places, 26 integer digits.
QUANTITY = pa.decimal128(38, 12)
SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("call_id", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("creator_id", pa.string()),
        ("video_id", pa.string()),
        ("chat_session_id", pa.string()),
        ("message_id", pa.string()),
        ("student_id", pa.string()),
        ("stage", pa.string()),
        ("provider", pa.string()),
        ("model", pa.string()),
        ("unit", pa.string()),
        ("quantity", QUANTITY),
        ("unit_price_usd", MONEY),
        ("cost_usd", MONEY),
        ("price_table_version", pa.string()),
        ("estimated", pa.bool_()),
        ("run_id", pa.string()),
    ]
)
# ``rewrite`` and ``title``: a generative chat model's short calls around an answer (a
# follow-up made to stand alone, a session's title), priced like its chat.
STAGES = ("upload", "transcribe", "embed", "query-embed", "rewrite", "chat", "title")
QUANTUM = Decimal("0.000000000001")


def exact_quantity(value: float | int | Decimal) -> Decimal:
    """A provider's quantity as the decimal it was written as (199.04, not 199.0399…)."""
    if isinstance(value, Decimal):
        exact = value
    elif isinstance(value, int):
        exact = Decimal(value)
    else:
        exact = Decimal(repr(float(value)))
    return exact.quantize(QUANTUM)


def month_of(when: datetime) -> str:
    """The UTC calendar month a record belongs to, ``YYYY-MM``."""
    return when.astimezone(UTC).strftime("%Y-%m")


@dataclass(frozen=True)
class Usage:
    """What one provider call consumed, in the provider's billing units."""

    provider: str
    model: str
    quantities: dict[str, float]
    estimated: bool = False


@dataclass(frozen=True)
class CostRecord:
    record_id: str
    occurred_at: datetime
    creator_id: str
    stage: str
    provider: str
    model: str
    unit: str
    quantity: Decimal
    unit_price_usd: Decimal
    cost_usd: Decimal
    price_table_version: str
    estimated: bool
    video_id: str | None = None
    chat_session_id: str | None = None
    message_id: str | None = None
    run_id: str | None = None
    # A student's question is costed to the creator, with the student named on each record.
    student_id: str | None = None
    # One provider call, one id: its per-unit records share it (None on records written
    # before call ids existed).
    call_id: str | None = None


class TotalsSink(Protocol):
    """Keeps month-to-date totals in step with the ledger (``LedgerTotals``)."""

    def apply(self, records: Sequence[CostRecord]) -> None: ...


@dataclass
class CostSummary:
    """Totals of the records one step wrote, for asset metadata and API responses."""

    cost_usd: Decimal = Decimal(0)
    quantities: dict[str, float] = field(default_factory=dict)

    def add(self, records: Sequence[CostRecord]) -> None:
        for record in records:
            self.cost_usd += record.cost_usd
            self.quantities[record.unit] = (self.quantities.get(record.unit, 0.0)
                                            + float(record.quantity))


class Ledger:
    def __init__(self, root: Path, prices: PriceTable, *,
                 totals: TotalsSink | None = None) -> None:
        self.root = root
        self.prices = prices
        self.totals = totals
        self.layout = LedgerLayout(root)

    def price(
        self,
        usage: Usage,
        *,
        creator_id: str,
        stage: str,
        video_id: str | None = None,
        chat_session_id: str | None = None,
        message_id: str | None = None,
        run_id: str | None = None,
        student_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> list[CostRecord]:
        """Turn one call's usage into records (one per unit), priced by the table in force."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        when = occurred_at or datetime.now(UTC)
        call_id = secrets.token_hex(12)
        records = []
        # Units the call did not use (no cache read, say) add no rows; a call that used
        # nothing still leaves one, so no call goes unrecorded.
        used = [(u, q) for u, q in usage.quantities.items() if q]
        for unit, quantity in used or list(usage.quantities.items())[:1]:
            price = self.prices.price(usage.provider, usage.model, unit, when)
            exact = exact_quantity(quantity)
            cost = (exact * price.usd_per_unit).quantize(QUANTUM)
            records.append(
                CostRecord(
                    record_id=secrets.token_hex(12),
                    occurred_at=when,
                    creator_id=creator_id,
                    stage=stage,
                    provider=usage.provider,
                    model=usage.model,
                    unit=unit,
                    quantity=exact,
                    unit_price_usd=price.usd_per_unit.quantize(QUANTUM),
                    cost_usd=cost,
                    price_table_version=price.version,
                    estimated=usage.estimated,
                    video_id=video_id,
                    chat_session_id=chat_session_id,
                    message_id=message_id,
                    run_id=run_id,
                    student_id=student_id,
                    call_id=call_id,
                )
            )
        return records

    def record(self, usage: Usage, **context: Any) -> list[CostRecord]:
        """Price one call's usage and append it to the ledger at once."""
        records = self.price(usage, **context)
        self.append(records)
        return records

    def append(self, records: Sequence[CostRecord]) -> Path | None:
        """Write one call's records as one file, then bring the maintained totals up to date.

        Both happen holding the ledger lock shared, so a compaction never swaps the view
        between them and ``LedgerTotals.rebuild`` (which holds it exclusive) sees no
        half-done append. The file is durable before the totals move: a crash in between
        leaves totals short, never long, and ``LedgerTotals.reconcile`` adds the call.
        """
        if not records:
            return None
        day = records[0].occurred_at.astimezone(UTC).strftime("%Y-%m-%d")
        table = pa.Table.from_pylist([asdict(r) for r in records], schema=SCHEMA)
        name = (f"{APPENDED_PREFIX}{datetime.now(UTC).strftime('%H%M%S%f')}-"
                f"{secrets.token_hex(6)}.parquet")
        with self.layout.appending() as view:
            directory = view / f"day={day}"
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                fsync_dir(view)
            temporary = directory / f".{name}.tmp"
            pq.write_table(table, temporary)
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            target = directory / name
            os.replace(temporary, target)
            fsync_dir(directory)
            if self.totals is not None:
                self.totals.apply(records)
        return self.root / f"day={day}" / name

    def exclusively(self) -> Any:
        """Hold the ledger lock exclusive: no append runs until the block ends."""
        self.layout.store.mkdir(parents=True, exist_ok=True)
        return flocked(self.layout.lock_path, fcntl.LOCK_EX)

    def version(self) -> str:
        """Changes whenever a record is written or the view is swapped: a day folder's mtime
        moves with each file renamed into it. One ``stat`` per day, so a live page can poll
        it every second."""
        view = self.layout.current()
        if view is None:
            return "empty"
        marks = []
        with os.scandir(view) as entries:
            for entry in entries:
                if entry.name.startswith("day=") and entry.is_dir():
                    marks.append(f"{entry.name}:{entry.stat().st_mtime_ns}")
        return view.name + "|" + "|".join(sorted(marks))

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the ``cost_records`` view over every ledger file.

        It reads the view current at connection time by its own path, so a compaction that
        swaps views meanwhile changes nothing for this connection (superseded views are
        kept for a grace period). Files written before a column was added lack it: they are
        read by column name and the missing column is NULL. The view always has every column
        of ``SCHEMA``, in order, with ``SCHEMA``'s types (an old file's float quantity is
        read as the decimal it was written as).
        """
        connection = duckdb.connect(":memory:")
        # Days are UTC days whatever the machine's zone (CAST(occurred_at AS DATE) uses it).
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("_empty_ledger", SCHEMA.empty_table())
        view = self.layout.current()
        if view is not None and any(view.glob("day=*/*.parquet")):
            pattern = str(view / "day=*" / "*.parquet").replace("'", "''")
            source = (f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = false, "
                      "union_by_name = true)")
        else:
            source = "SELECT * FROM _empty_ledger"
        connection.execute(
            f"CREATE VIEW cost_records AS SELECT {typed_columns()} FROM "
            f"(SELECT * FROM _empty_ledger UNION ALL BY NAME {source})"
        )
        return connection

    def query(
        self, sql: str, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run SQL against ``cost_records``; returns column names and rows."""
        with self.connect() as connection:
            try:
                result = connection.execute(sql, params or [])
                columns = [d[0] for d in result.description or []]
                return columns, result.fetchall()
            except duckdb.Error as exc:
                raise ValidationError(f"the cost query failed: {exc}") from exc


def typed_columns() -> str:
    """``SCHEMA``'s columns, each cast to its ledger type (DuckDB widens a mix of decimal and
    float quantities to DOUBLE; the cast brings back the written decimal)."""
    quantity = f"CAST(quantity AS DECIMAL({QUANTITY.precision}, {QUANTITY.scale})) AS quantity"
    return ", ".join(quantity if name == "quantity" else name for name in SCHEMA.names)
