"""Usage and costs: the creator's own ledger, read through DuckDB."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get

from chronos_pipeline.lib import costs
from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.services import Services


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (float(v) if hasattr(v, "as_tuple") else v) for k, v in row.items()}
            for row in rows]


class UsageController(Controller):
    path = "/usage"
    tags = ["usage"]

    @get("/", sync_to_thread=True)
    def usage(self, creator: Creator, services: Services) -> dict[str, Any]:
        """Totals by stage, provider and day, and the total cost to date."""
        ledger = services.ledger
        return {
            "creator_id": creator.id,
            "total_cost_usd": costs.total_cost(ledger, creator.id),
            "month_to_date": costs.month_to_date(ledger, creator.id),
            "by_stage": _jsonable(costs.usage_by(ledger, creator.id, "stage").as_dicts()),
            "by_provider": _jsonable(costs.usage_by(ledger, creator.id, "provider").as_dicts()),
            "by_day": _jsonable(costs.usage_by(ledger, creator.id, "day").as_dicts()),
        }

    @get("/costs", sync_to_thread=True)
    def costs_by_video(self, creator: Creator, services: Services) -> list[dict[str, Any]]:
        """Totals per video and stage."""
        table = costs.report_by_video_and_stage(services.ledger, creator.id)
        return _jsonable(table.as_dicts())
