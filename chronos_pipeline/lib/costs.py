"""Cost reports over the ledger, all read through DuckDB's ``cost_records`` view."""

from __future__ import annotations

import calendar
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.ledger import MONEY, QUANTUM, Ledger
from chronos_pipeline.lib.ledger_totals import month_spent


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _table(ledger: Ledger, sql: str, params: list[Any] | None = None) -> Table:
    columns, rows = ledger.query(sql, params)
    return Table(columns, rows)


def report_by_video_and_stage(ledger: Ledger, creator_id: str | None = None) -> Table:
    """Totals per video (or chat), stage, model and unit: what `chronos costs report` prints.

    One row per model: quantities of different models (a local and a cloud embedder's
    tokens, say) are never added together.
    """
    where = "WHERE creator_id = ?" if creator_id else ""
    return _table(
        ledger,
        f"""
        SELECT creator_id,
               coalesce(video_id, '(chat)') AS video_id,
               stage,
               provider,
               model,
               unit,
               sum(quantity) AS quantity,
               sum(cost_usd) AS cost_usd,
               count(*) AS records
        FROM cost_records {where}
        GROUP BY ALL
        ORDER BY creator_id, video_id, stage, provider, model, unit
        """,
        [creator_id] if creator_id else None,
    )


def usage_by(ledger: Ledger, creator_id: str, dimension: str) -> Table:
    """A creator's totals by ``stage``, ``provider`` or ``day``, per unit."""
    column = {"stage": "stage", "provider": "provider",
              "day": "CAST(occurred_at AS DATE)"}[dimension]
    return _table(
        ledger,
        f"""
        SELECT {column} AS {dimension}, unit, sum(quantity) AS quantity,
               sum(cost_usd) AS cost_usd
        FROM cost_records WHERE creator_id = ?
        GROUP BY ALL ORDER BY 1, 2
        """,
        [creator_id],
    )


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spent(
    ledger: Ledger, creator_id: str, since: datetime | None = None,
    until: datetime | None = None,
) -> Decimal:
    """A creator's exact spend, optionally between two instants."""
    sql = "SELECT coalesce(sum(cost_usd), 0) FROM cost_records WHERE creator_id = ?"
    params: list[Any] = [creator_id]
    if since is not None:
        sql += " AND occurred_at >= ?"
        params.append(since)
    if until is not None:
        sql += " AND occurred_at <= ?"
        params.append(until)
    _, rows = ledger.query(sql, params)
    return Decimal(rows[0][0])


@dataclass(frozen=True)
class MonthToDate:
    month: str
    spent_usd: Decimal
    projected_usd: Decimal
    days_elapsed: float
    days_in_month: int


def month_to_date(ledger: Ledger, creator_id: str, now: datetime | None = None) -> MonthToDate:
    """Spend this calendar month and a straight-line projection to its end."""
    now = now or datetime.now(UTC)
    start = month_start(now)
    so_far = month_spent(ledger, creator_id, now)
    if so_far is None:
        so_far = spent(ledger, creator_id, since=start, until=now)
    projection = project_month_end(so_far, now)
    return MonthToDate(
        month=start.strftime("%Y-%m"),
        spent_usd=so_far,
        projected_usd=projection.projected_usd.quantize(Decimal("0.000001")),
        days_elapsed=round(projection.days_elapsed, 2),
        days_in_month=projection.days_in_month,
    )


@dataclass(frozen=True)
class Projection:
    projected_usd: Decimal
    days_elapsed: float
    days_in_month: int


def project_month_end(so_far: Decimal, now: datetime) -> Projection:
    """Straight-line projection of this month's spend to the month's end."""
    start = month_start(now)
    days = calendar.monthrange(now.year, now.month)[1]
    # At least an hour elapsed, so a first-minute spend does not project to millions.
    elapsed_days = max((now - start).total_seconds() / 86400, 1 / 24)
    return Projection(so_far * Decimal(days) / Decimal(repr(elapsed_days)), elapsed_days, days)


@dataclass(frozen=True)
class Repriced:
    stage: str
    provider: str
    model: str
    unit: str
    quantity: float
    recorded_usd: Decimal
    repriced_usd: Decimal
    price_table_version: str


def recompute(ledger: Ledger, as_of: date, creator_id: str | None = None) -> list[Repriced]:
    """What the ledger would cost under the price table in force on ``as_of``.

    Nothing is rewritten: the records keep the price they were written with.
    """
    where = "WHERE creator_id = ?" if creator_id else ""
    _, rows = ledger.query(
        f"SELECT stage, provider, model, unit, sum(quantity), sum(cost_usd) "
        f"FROM cost_records {where} GROUP BY ALL ORDER BY ALL",
        [creator_id] if creator_id else None,
    )
    out = []
    for stage, provider, model, unit, quantity, recorded in rows:
        price = ledger.prices.price(provider, model, unit, as_of)
        repriced = (Decimal(quantity) * price.usd_per_unit).quantize(QUANTUM)
        out.append(Repriced(stage, provider, model, unit, float(quantity), Decimal(recorded),
                            repriced, price.version))
    return out


ESTIMATES_SCHEMA = pa.schema([
    ("estimate_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("kind", pa.string()),
    ("creator_id", pa.string()),
    ("provider", pa.string()),
    ("model", pa.string()),
    ("videos", pa.int64()),
    ("tokens", pa.float64()),
    ("estimated_usd", MONEY),
    ("price_table_version", pa.string()),
])


@dataclass(frozen=True)
class Estimate:
    estimate_id: str
    provider: str
    model: str
    videos: int
    tokens: float
    estimated_usd: Decimal
    price_table_version: str


def estimate_reembed(
    ledger: Ledger, model: str, *, provider: str | None = None, creator_id: str | None = None
) -> Estimate:
    """Expected cost of re-embedding every video with ``model``, from the tokens already on
    the ledger (each video's latest embedding run), kept for comparison with the actual."""
    now = datetime.now(UTC)
    if provider is None:
        providers = ledger.prices.providers_for(model, "input_token", now)
        if not providers:
            raise ValidationError(f"no price for embedding model {model!r} in the price table")
        if len(providers) > 1:
            raise ValidationError(
                f"several providers price {model!r} ({', '.join(providers)}); "
                "name one with --provider"
            )
        provider = providers[0]
    price = ledger.prices.price(provider, model, "input_token", now)
    scope = "AND creator_id = ?" if creator_id else ""
    _, rows = ledger.query(
        f"""
        WITH per_run AS (
            SELECT video_id, run_id, max(occurred_at) AS last_at, sum(quantity) AS tokens
            FROM cost_records
            WHERE stage = 'embed' AND unit = 'input_token' {scope}
            GROUP BY video_id, run_id
        )
        SELECT count(*), coalesce(sum(tokens), 0)
        FROM (SELECT video_id, arg_max(tokens, last_at) AS tokens FROM per_run
              GROUP BY video_id) AS latest
        """,
        [creator_id] if creator_id else None,
    )
    videos, tokens = int(rows[0][0]), float(rows[0][1])
    estimate = Estimate(
        estimate_id=secrets.token_hex(8), provider=provider, model=model, videos=videos,
        tokens=tokens,
        estimated_usd=(Decimal(repr(tokens)) * price.usd_per_unit).quantize(QUANTUM),
        price_table_version=price.version,
    )
    directory = ledger.layout.adopt_legacy_estimates()
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([{
        "estimate_id": estimate.estimate_id, "created_at": now, "kind": "reembed",
        "creator_id": creator_id, "provider": provider, "model": model, "videos": videos,
        "tokens": tokens, "estimated_usd": estimate.estimated_usd,
        "price_table_version": price.version,
    }], schema=ESTIMATES_SCHEMA)
    temporary = directory / f".{estimate.estimate_id}.tmp"
    pq.write_table(table, temporary)
    os.replace(temporary, directory / f"{estimate.estimate_id}.parquet")
    return estimate


def estimates_against_actual(ledger: Ledger) -> Table:
    """Each re-embedding estimate beside what embedding with that model has cost since."""
    directory = ledger.layout.adopt_legacy_estimates()
    if not any(directory.glob("*.parquet")):
        return Table(["estimate_id", "created_at", "model", "estimated_usd", "actual_usd"], [])
    pattern = str(directory / "*.parquet").replace("'", "''")
    return _table(
        ledger,
        f"""
        SELECT e.estimate_id, e.created_at, e.provider, e.model, e.videos,
               e.tokens AS estimated_tokens, e.estimated_usd,
               coalesce(sum(c.quantity), 0) AS actual_tokens,
               coalesce(sum(c.cost_usd), 0) AS actual_usd
        FROM read_parquet('{pattern}') e
        LEFT JOIN cost_records c
          ON c.stage = 'embed' AND c.model = e.model AND c.provider = e.provider
         AND c.occurred_at >= e.created_at
         AND (e.creator_id IS NULL OR c.creator_id = e.creator_id)
        GROUP BY ALL ORDER BY e.created_at
        """,
    )
