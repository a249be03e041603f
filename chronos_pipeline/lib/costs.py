"""Cost reports over the ledger, all read through DuckDB's ``cost_records`` view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chronos_pipeline.lib.ledger import Ledger


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
    """Totals per video (or chat) and stage: what `chronos costs report` prints."""
    where = "WHERE creator_id = ?" if creator_id else ""
    return _table(
        ledger,
        f"""
        SELECT creator_id,
               coalesce(video_id, '(chat)') AS video_id,
               stage,
               unit,
               string_agg(DISTINCT provider || '/' || model, ', ') AS models,
               sum(quantity) AS quantity,
               sum(cost_usd) AS cost_usd,
               count(*) AS records
        FROM cost_records {where}
        GROUP BY ALL
        ORDER BY creator_id, video_id, stage, unit
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


def total_cost(ledger: Ledger, creator_id: str) -> float:
    _columns, rows = ledger.query(
        "SELECT coalesce(sum(cost_usd), 0) FROM cost_records WHERE creator_id = ?", [creator_id]
    )
    return float(rows[0][0])
