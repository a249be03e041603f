"""Per-creator monthly budgets: alerts at 50/80/100 %, and a hard limit that stops spending.

Month-to-date spend is the maintained total (``ledger_totals``: one key lookup in the
catalog), or a DuckDB sum over the ledger for a ledger that keeps none. Every paid step
checks the hard limit *before* calling a provider (chat answers 402, a pipeline step fails
with the reason), and records any newly crossed alert threshold after it spent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from chronos_pipeline.lib.catalog import Budget, BudgetAlert, Catalog
from chronos_pipeline.lib.costs import month_start, spent
from chronos_pipeline.lib.errors import BudgetExceededError, ValidationError
from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.ledger_totals import month_spent

THRESHOLDS = (50, 80, 100)


@dataclass(frozen=True)
class BudgetStatus:
    month: str
    spent_usd: Decimal
    budget: Budget | None
    alerts: list[BudgetAlert]

    @property
    def share(self) -> float | None:
        if self.budget is None:
            return None
        return float(self.spent_usd / self.budget.monthly_usd)

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "spent_usd": usd_text(self.spent_usd),
            "monthly_usd": usd_text(self.budget.monthly_usd) if self.budget else None,
            "hard_limit_usd": usd_text(self.budget.hard_limit_usd) if self.budget else None,
            "share": self.share,
            "alerts": [{"month": a.month, "threshold": a.threshold,
                        "spent_usd": usd_text(a.spent_usd), "at": a.at.isoformat()}
                       for a in self.alerts],
        }


def usd_text(amount: Decimal) -> str:
    """An exact amount without trailing zeros or exponent: 0, 0.0105, 12.5."""
    return format(amount.normalize(), "f")


# At most 12 digits before the point and 6 after (to the micro-dollar): more than any budget
# needs, and it fits the catalog's 32-character columns on every database.
MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"
MONEY_MAX_CHARS = 20
_MONEY = re.compile(MONEY_PATTERN)


def parse_usd(value: str, name: str) -> Decimal:
    """A user-typed, non-negative USD amount such as ``25`` or ``0.015`` (at most 12 digits
    before the point and 6 after), or a ValidationError that names the field."""
    text = (value or "").strip()
    if len(text) > MONEY_MAX_CHARS or not _MONEY.fullmatch(text):
        shown = text if len(text) <= MONEY_MAX_CHARS else text[:MONEY_MAX_CHARS] + "…"
        raise ValidationError(
            f"{name} must be a decimal amount in USD, not negative, with at most 12 digits "
            f"before the point and 6 after (like 25 or 0.015), got {shown!r}")
    return Decimal(text)


class Budgets:
    def __init__(self, catalog: Catalog, ledger: Ledger) -> None:
        self.catalog = catalog
        self.ledger = ledger

    def spent_this_month(self, creator_id: str, now: datetime | None = None) -> Decimal:
        kept = month_spent(self.ledger, creator_id, now or datetime.now(UTC))
        if kept is not None:
            return kept
        return spent(self.ledger, creator_id, since=month_start(now))

    def status(self, creator_id: str) -> BudgetStatus:
        return BudgetStatus(
            month=month_start().strftime("%Y-%m"),
            spent_usd=self.spent_this_month(creator_id),
            budget=self.catalog.get_budget(creator_id),
            alerts=self.catalog.budget_alerts(creator_id),
        )

    def enforce(self, creator_id: str) -> None:
        """Refuse to spend for a creator at or over the hard limit."""
        budget = self.catalog.get_budget(creator_id)
        if budget is None:
            return
        spent = self.spent_this_month(creator_id)
        if spent >= budget.hard_limit_usd:
            raise BudgetExceededError(
                f"the monthly spending limit of ${budget.hard_limit_usd} is reached "
                f"(${spent:.6f} spent this month); raise the budget to continue"
            )

    def student_spent_this_month(self, creator_id: str, student_id: str,
                                 now: datetime | None = None) -> Decimal:
        kept = month_spent(self.ledger, creator_id, now or datetime.now(UTC), student_id)
        if kept is not None:
            return kept
        _, rows = self.ledger.query(
            "SELECT coalesce(sum(cost_usd), 0) FROM cost_records "
            "WHERE creator_id = ? AND student_id = ? AND occurred_at >= ?",
            [creator_id, student_id, month_start(now)],
        )
        return Decimal(rows[0][0])

    def enforce_student(self, creator_id: str, student_id: str) -> None:
        """Refuse a student's question once their monthly cap (set by the creator) is spent."""
        student = self.catalog.get_student(creator_id, student_id)
        if student.monthly_cap_usd is None:
            return
        spent = self.student_spent_this_month(creator_id, student_id)
        if spent >= student.monthly_cap_usd:
            raise BudgetExceededError(
                "you have used this month's allowance for questions in this course; "
                "ask the course's creator to raise it"
            )

    def record_alerts(self, creator_id: str) -> list[int]:
        """Record every threshold this month's spend has crossed; returns the new ones."""
        budget = self.catalog.get_budget(creator_id)
        if budget is None:
            return []
        spent = self.spent_this_month(creator_id)
        month = month_start().strftime("%Y-%m")
        return [
            threshold for threshold in THRESHOLDS
            if spent * 100 >= budget.monthly_usd * threshold
            and self.catalog.record_budget_alert(creator_id, month, threshold, spent)
        ]
