"""The cost ledger: one record per billable event, as append-only Parquet, read by DuckDB.

Records are written when the provider call returns, so a step that fails later still
leaves its spend. Files are never rewritten: each append is a new file under
``ledger/day=YYYY-MM-DD/``, renamed into place whole. DuckDB reads them all through the
``cost_records`` view.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.pricing import PriceTable

MONEY = pa.decimal128(38, 12)
SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
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
        ("quantity", pa.float64()),
        ("unit_price_usd", MONEY),
        ("cost_usd", MONEY),
        ("price_table_version", pa.string()),
        ("estimated", pa.bool_()),
        ("run_id", pa.string()),
    ]
)
STAGES = ("upload", "transcribe", "embed", "query-embed", "chat")
QUANTUM = Decimal("0.000000000001")


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
    quantity: float
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


@dataclass
class CostSummary:
    """Totals of the records one step wrote, for asset metadata and API responses."""

    cost_usd: Decimal = Decimal(0)
    quantities: dict[str, float] = field(default_factory=dict)

    def add(self, records: Sequence[CostRecord]) -> None:
        for record in records:
            self.cost_usd += record.cost_usd
            self.quantities[record.unit] = self.quantities.get(record.unit, 0.0) + record.quantity


class Ledger:
    def __init__(self, root: Path, prices: PriceTable) -> None:
        self.root = root
        self.prices = prices

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
        records = []
        # Units the call did not use (no cache read, say) add no rows; a call that used
        # nothing still leaves one, so no call goes unrecorded.
        used = [(u, q) for u, q in usage.quantities.items() if q]
        for unit, quantity in used or list(usage.quantities.items())[:1]:
            price = self.prices.price(usage.provider, usage.model, unit, when)
            cost = (Decimal(repr(float(quantity))) * price.usd_per_unit).quantize(QUANTUM)
            records.append(
                CostRecord(
                    record_id=secrets.token_hex(12),
                    occurred_at=when,
                    creator_id=creator_id,
                    stage=stage,
                    provider=usage.provider,
                    model=usage.model,
                    unit=unit,
                    quantity=float(quantity),
                    unit_price_usd=price.usd_per_unit.quantize(QUANTUM),
                    cost_usd=cost,
                    price_table_version=price.version,
                    estimated=usage.estimated,
                    video_id=video_id,
                    chat_session_id=chat_session_id,
                    message_id=message_id,
                    run_id=run_id,
                    student_id=student_id,
                )
            )
        return records

    def record(self, usage: Usage, **context: Any) -> list[CostRecord]:
        """Price one call's usage and append it to the ledger at once."""
        records = self.price(usage, **context)
        self.append(records)
        return records

    def append(self, records: Sequence[CostRecord]) -> Path | None:
        if not records:
            return None
        day = records[0].occurred_at.strftime("%Y-%m-%d")
        directory = self.root / f"day={day}"
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC).strftime('%H%M%S%f')}-{secrets.token_hex(6)}.parquet"
        table = pa.Table.from_pylist([asdict(r) for r in records], schema=SCHEMA)
        temporary = directory / f".{name}.tmp"
        pq.write_table(table, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        target = directory / name
        os.replace(temporary, target)
        return target

    def version(self) -> str:
        """Changes whenever a record is written: a day folder's mtime moves with each file
        renamed into it. One ``stat`` per day, so a live page can poll it every second."""
        if not self.root.is_dir():
            return "empty"
        marks = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name.startswith("day=") and entry.is_dir():
                    marks.append(f"{entry.name}:{entry.stat().st_mtime_ns}")
        return "|".join(sorted(marks)) or "empty"

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the ``cost_records`` view over every ledger file.

        Files written before a column was added lack it: they are read by column name and
        the missing column is NULL. The view always has every column of ``SCHEMA``, in order.
        """
        connection = duckdb.connect(":memory:")
        # Days are UTC days whatever the machine's zone (CAST(occurred_at AS DATE) uses it).
        connection.execute("SET TimeZone = 'UTC'")
        connection.register("_empty_ledger", SCHEMA.empty_table())
        if any(self.root.glob("day=*/*.parquet")):
            pattern = str(self.root / "day=*" / "*.parquet").replace("'", "''")
            connection.execute(
                "CREATE VIEW cost_records AS SELECT * FROM _empty_ledger UNION ALL BY NAME "
                f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = false, "
                "union_by_name = true)"
            )
        else:
            connection.execute("CREATE VIEW cost_records AS SELECT * FROM _empty_ledger")
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
