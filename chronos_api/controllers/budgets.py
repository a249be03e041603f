"""The creator's monthly budget, spend to date and the alerts it has raised."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, put

from chronos_pipeline.lib.budgets import parse_usd
from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.services import Services


class BudgetIn(msgspec.Struct, forbid_unknown_fields=True):
    monthly_usd: str
    hard_limit_usd: str | None = None


class BudgetController(Controller):
    path = "/budget"
    tags = ["usage"]

    @get("/", sync_to_thread=True)
    def get_budget(self, creator: Creator, services: Services) -> dict[str, Any]:
        """Budget, month-to-date spend and alerts (50/80/100 %)."""
        return services.budgets.status(creator.id).to_json()

    @put("/", sync_to_thread=True)
    def set_budget(self, data: BudgetIn, creator: Creator, services: Services) -> dict[str, Any]:
        """Set the monthly budget; spending stops at the hard limit (default: the budget)."""
        hard = parse_usd(data.hard_limit_usd, "hard_limit_usd") if data.hard_limit_usd else None
        services.catalog.set_budget(creator.id, parse_usd(data.monthly_usd, "monthly_usd"), hard)
        services.budgets.record_alerts(creator.id)
        return services.budgets.status(creator.id).to_json()
