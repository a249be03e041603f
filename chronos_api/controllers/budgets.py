"""The creator's monthly budget, spend to date and the alerts it has raised."""

from __future__ import annotations

from litestar import Controller, get, put

from chronos_api.openapi import documented
from chronos_api.schemas import BudgetIn, BudgetOut
from chronos_pipeline.lib.budgets import parse_usd
from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.services import Services


class BudgetController(Controller):
    path = "/budget"
    tags = ["usage"]

    @get("/", sync_to_thread=True, **documented(403))
    def get_budget(self, creator: Creator, services: Services) -> BudgetOut:
        """Budget, month-to-date spend and alerts (50/80/100 %)."""
        return BudgetOut.of(services.budgets.status(creator.id))

    @put("/", sync_to_thread=True, **documented(400, 403, 422))
    def set_budget(self, data: BudgetIn, creator: Creator, services: Services) -> BudgetOut:
        """Set the monthly budget; spending stops at the hard limit (default: the budget)."""
        hard = parse_usd(data.hard_limit_usd, "hard_limit_usd") if data.hard_limit_usd else None
        services.catalog.set_budget(creator.id, parse_usd(data.monthly_usd, "monthly_usd"), hard)
        services.budgets.record_alerts(creator.id)
        return BudgetOut.of(services.budgets.status(creator.id))
