"""Per-creator monthly budgets: alerts at 50/80/100 %, and a hard limit that holds.

Month-to-date spend is the maintained total (``ledger_totals``: one key lookup in the
catalog), or a DuckDB sum over the ledger for a ledger that keeps none. Before a paid step
calls a provider it *reserves* its expected cost (an upper bound of what the step can bill,
from the provider's ``expected_usage`` and the price table) and is refused when spent +
held by steps in flight + this step would pass the hard limit, or a student's cap
(``spend_reservations``: atomic per creator, so concurrent steps cannot overspend together).
Chat answers 402; a pipeline step fails the video with the reason. The step settles its
reservation when it ends (its real records are on the ledger by then) and records any newly
crossed alert threshold after it spent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from types import TracebackType
from typing import Any

from chronos_pipeline.lib.catalog import Budget, BudgetAlert, Catalog
from chronos_pipeline.lib.costs import month_start, spent
from chronos_pipeline.lib.errors import BudgetExceededError, ValidationError
from chronos_pipeline.lib.ledger import QUANTUM, Ledger, Usage, exact_quantity, month_of
from chronos_pipeline.lib.ledger_totals import LedgerTotals, from_pusd, month_spent, to_pusd
from chronos_pipeline.lib.pricing import PriceTable
from chronos_pipeline.lib.spend_reservations import Hold, SpendReservations

THRESHOLDS = (50, 80, 100)
# A step that crashed never settles; its hold lapses after this long. Long enough for a
# cloud transcription of a long lecture with retries, short enough not to block a month.
HOLD_FOR = {"transcribe": timedelta(hours=2), "embed": timedelta(hours=2)}
HOLD_FOR_DEFAULT = timedelta(minutes=15)
STEP_NAMES = {"transcribe": "transcription", "embed": "embedding", "query-embed": "question",
              "chat": "question"}
STUDENT_REFUSAL = ("you have used this month's allowance for questions in this course; "
                   "ask the course's creator to raise it")


def expected_cost(prices: PriceTable, usages: Iterable[Usage],
                  when: datetime | None = None) -> Decimal:
    """What ``usages`` would cost by the price table in force (rounded up to the ledger's
    quantum). A model with no price is a ``PricingError``, before any request is made."""
    at = when or datetime.now(UTC)
    total = Decimal(0)
    for usage in usages:
        for unit, quantity in usage.quantities.items():
            if quantity:
                price = prices.price(usage.provider, usage.model, unit, at)
                total += exact_quantity(quantity) * price.usd_per_unit
    return total.quantize(QUANTUM, rounding=ROUND_CEILING)


@dataclass(frozen=True)
class BudgetStatus:
    month: str
    spent_usd: Decimal
    budget: Budget | None
    alerts: list[BudgetAlert]
    # Held by paid steps in flight (their expected cost, until they settle).
    reserved_usd: Decimal = Decimal(0)

    @property
    def share(self) -> float | None:
        if self.budget is None:
            return None
        return float(self.spent_usd / self.budget.monthly_usd)

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "spent_usd": usd_text(self.spent_usd),
            "reserved_usd": usd_text(self.reserved_usd),
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


class Reservation:
    """Spend held for one paid step (or one question) until it settles; a ``with`` block
    settles it however the step ends."""

    def __init__(self, budgets: Budgets, creator_id: str, *, student_id: str | None = None,
                 ref: str | None = None) -> None:
        self.budgets = budgets
        self.creator_id = creator_id
        self.student_id = student_id
        self.ref = ref
        self.held_usd = Decimal(0)
        self._hold_ids: list[str] = []

    def add(self, usages: Iterable[Usage], stage: str) -> None:
        """Hold the expected cost of ``usages`` too, or raise ``BudgetExceededError`` (and
        hold nothing more) when it would pass the hard limit or the student's cap."""
        self._hold(expected_cost(self.budgets.ledger.prices, usages), stage)

    def _hold(self, amount: Decimal, stage: str) -> None:
        hold_id = self.budgets.hold(self.creator_id, amount, stage=stage,
                                    student_id=self.student_id, ref=self.ref)
        if hold_id is not None:
            self._hold_ids.append(hold_id)
            self.held_usd += amount

    def cover(self, usages: Iterable[Usage], stage: str) -> None:
        """Hold more if the expected cost of ``usages`` is above what is held already (the
        chat prompt, once the passages are known)."""
        more = expected_cost(self.budgets.ledger.prices, usages) - self.held_usd
        if more > 0:
            self._hold(more, stage)

    def settle(self) -> None:
        """Release what is held: the step's real records are on the ledger already."""
        self.budgets.holds.release(self._hold_ids)
        self._hold_ids = []
        self.held_usd = Decimal(0)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.settle()


class Budgets:
    def __init__(self, catalog: Catalog, ledger: Ledger) -> None:
        self.catalog = catalog
        self.ledger = ledger
        self.holds = SpendReservations(catalog.engine)

    def spent_this_month(self, creator_id: str, now: datetime | None = None) -> Decimal:
        kept = month_spent(self.ledger, creator_id, now or datetime.now(UTC))
        if kept is not None:
            return kept
        return spent(self.ledger, creator_id, since=month_start(now))

    def reserved_this_month(self, creator_id: str, student_id: str | None = None) -> Decimal:
        now = datetime.now(UTC)
        standing = self.holds.standing(creator_id, month_of(now), now, student_id)
        return from_pusd(standing.student_held_pusd if student_id else standing.held_pusd)

    def status(self, creator_id: str) -> BudgetStatus:
        return BudgetStatus(
            month=month_start().strftime("%Y-%m"),
            spent_usd=self.spent_this_month(creator_id),
            budget=self.catalog.get_budget(creator_id),
            alerts=self.catalog.budget_alerts(creator_id),
            reserved_usd=self.reserved_this_month(creator_id),
        )

    # refusing and holding -----------------------------------------------------------------
    def reserve(self, creator_id: str, usages: Iterable[Usage], *, stage: str,
                student_id: str | None = None, ref: str | None = None) -> Reservation:
        """Hold a paid step's expected cost before its first provider request (see
        ``Reservation``); raises ``BudgetExceededError`` with nothing held when it would
        pass a limit."""
        reservation = Reservation(self, creator_id, student_id=student_id, ref=ref)
        reservation.add(usages, stage)
        return reservation

    def hold(self, creator_id: str, amount: Decimal, *, stage: str,
             student_id: str | None = None, ref: str | None = None) -> str | None:
        """Hold ``amount`` against the creator's hard limit and the student's cap, atomically;
        returns the hold's id, or None when nothing needs holding (no limit applies, or the
        step is free and only needs the limits not reached yet)."""
        budget = self.catalog.get_budget(creator_id)
        cap = (self.catalog.get_student(creator_id, student_id).monthly_cap_usd
               if student_id is not None else None)
        if budget is None and cap is None:
            return None
        amount_pusd = to_pusd(amount)
        if amount_pusd == 0:
            self.check(creator_id, student_id=student_id, stage=stage)
            return None
        now = datetime.now(UTC)
        kept = isinstance(self.ledger.totals, LedgerTotals)
        if isinstance(self.ledger.totals, LedgerTotals):
            self.ledger.totals.ensure_seeded(self.ledger)
        request = Hold(
            creator_id=creator_id, month=month_of(now), amount_pusd=amount_pusd, stage=stage,
            expires_at=now + HOLD_FOR.get(stage, HOLD_FOR_DEFAULT),
            creator_limit_pusd=to_pusd(budget.hard_limit_usd) if budget else None,
            student_id=student_id, student_cap_pusd=to_pusd(cap) if cap is not None else None,
            ref=ref,
            spent_pusd=None if kept else to_pusd(self.spent_this_month(creator_id, now)),
            student_spent_pusd=(None if kept or student_id is None else to_pusd(
                self.student_spent_this_month(creator_id, student_id, now))),
        )
        hold_id = self.holds.hold(request, now)
        if hold_id is None:
            self.check(creator_id, amount, student_id=student_id, stage=stage)
            # Passed on a re-read: a hold lapsed or settled meanwhile. Refuse anyway; the
            # caller's view of the headroom was too tight a moment ago.
            raise BudgetExceededError(
                f"the monthly spending limit would be passed by this "
                f"{STEP_NAMES.get(stage, stage)}; try again in a moment")
        return hold_id

    def check(self, creator_id: str, expected: Decimal = Decimal(0), *,
              student_id: str | None = None, stage: str | None = None) -> None:
        """Refuse a step expected to cost ``expected`` when spent + held + it would pass the
        hard limit or the student's cap (or either is reached already); holds nothing."""
        budget = self.catalog.get_budget(creator_id)
        if budget is not None:
            spent_usd = self.spent_this_month(creator_id)
            held = self.reserved_this_month(creator_id)
            limit = budget.hard_limit_usd
            in_flight = f", ${held:.6f} held by steps in progress" if held else ""
            if spent_usd + held >= limit:
                raise BudgetExceededError(
                    f"the monthly spending limit of ${limit} is reached "
                    f"(${spent_usd:.6f} spent this month{in_flight}); "
                    "raise the budget to continue")
            if spent_usd + held + expected > limit:
                raise BudgetExceededError(
                    f"the monthly spending limit of ${limit} would be passed: this "
                    f"{STEP_NAMES.get(stage or '', 'step')} may cost up to ${expected:.6f} "
                    f"(${spent_usd:.6f} spent this month{in_flight}); "
                    "raise the budget to continue")
        if student_id is not None:
            self.check_student(creator_id, student_id, expected)

    def check_student(self, creator_id: str, student_id: str,
                      expected: Decimal = Decimal(0)) -> None:
        student = self.catalog.get_student(creator_id, student_id)
        if student.monthly_cap_usd is None:
            return
        used = (self.student_spent_this_month(creator_id, student_id)
                + self.reserved_this_month(creator_id, student_id))
        if used >= student.monthly_cap_usd or used + expected > student.monthly_cap_usd:
            raise BudgetExceededError(STUDENT_REFUSAL)

    def enforce(self, creator_id: str, expected: Decimal = Decimal(0)) -> None:
        """Refuse to spend for a creator at or over the hard limit (or who would pass it)."""
        self.check(creator_id, expected)

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

    def enforce_student(self, creator_id: str, student_id: str,
                        expected: Decimal = Decimal(0)) -> None:
        """Refuse a student's question once their monthly cap (set by the creator) is spent,
        or would be by this question."""
        self.check_student(creator_id, student_id, expected)

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
