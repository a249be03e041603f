"""Usage and costs: the creator's own ledger, read through DuckDB."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get

from chronos_api.openapi import documented
from chronos_api.schemas import (
    MonthToDateOut,
    UsageByDayOut,
    UsageByProviderOut,
    UsageByStageOut,
    UsageOut,
    VideoCostOut,
)
from chronos_pipeline.lib import costs
from chronos_pipeline.lib.budgets import usd_text
from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.services import Services


def _totals(ledger: Ledger, creator_id: str, dimension: str) -> list[dict[str, Any]]:
    """Rows with an exact ``cost_usd`` string and a float quantity."""
    return [row | {"quantity": float(row["quantity"]), "cost_usd": usd_text(row["cost_usd"])}
            for row in costs.usage_by(ledger, creator_id, dimension).as_dicts()]


class UsageController(Controller):
    path = "/usage"
    tags = ["usage"]

    @get("/", sync_to_thread=True, **documented(403))
    def usage(self, creator: Creator, services: Services) -> UsageOut:
        """Totals by stage, provider and day, month to date, and the total cost to date."""
        ledger = services.ledger
        month = costs.month_to_date(ledger, creator.id)
        return UsageOut(
            creator_id=creator.id,
            total_cost_usd=usd_text(costs.spent(ledger, creator.id)),
            month_to_date=MonthToDateOut(
                month=month.month, spent_usd=usd_text(month.spent_usd),
                projected_usd=usd_text(month.projected_usd), days_elapsed=month.days_elapsed,
                days_in_month=month.days_in_month),
            by_stage=[UsageByStageOut(**row) for row in _totals(ledger, creator.id, "stage")],
            by_provider=[UsageByProviderOut(**row)
                         for row in _totals(ledger, creator.id, "provider")],
            by_day=[UsageByDayOut(**row) for row in _totals(ledger, creator.id, "day")],
        )

    @get("/costs", sync_to_thread=True, **documented(403))
    def costs_by_video(self, creator: Creator, services: Services) -> list[VideoCostOut]:
        """Totals per video and stage."""
        table = costs.report_by_video_and_stage(services.ledger, creator.id)
        return [VideoCostOut(**row | {"quantity": float(row["quantity"]),
                                      "cost_usd": usd_text(row["cost_usd"])})
                for row in table.as_dicts()]
