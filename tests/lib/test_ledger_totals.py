"""Month-to-date totals kept in the catalog agree with a SUM over the ledger: after many
appends, after a crash between a file and its count, after a rebuild, on SQLite and
PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from chronos_pipeline.lib.budgets import Budgets
from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.errors import BudgetExceededError
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.ledger_compaction import compact_ledger
from chronos_pipeline.lib.ledger_totals import LedgerTotals
from chronos_pipeline.lib.pricing import PriceTable

MONTHS = [datetime(2026, 10, 30, 23, 59, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC),
          datetime(2026, 11, 20, 12, tzinfo=UTC)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
    built = Catalog(url)
    yield built
    built.close()


@pytest.fixture
def ledger(catalog: Catalog, tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger", PriceTable.load(), totals=LedgerTotals(catalog))


def _totals(ledger: Ledger) -> LedgerTotals:
    assert isinstance(ledger.totals, LedgerTotals)
    return ledger.totals


def _spend(ledger: Ledger, n: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    for i in range(n):
        ledger.record(
            Usage("anthropic", "claude-haiku-4-5",
                  {"input_token": rng.randint(1, 5000), "output_token": rng.randint(0, 900)}),
            creator_id=rng.choice(["cr_000000000000000a", "cr_000000000000000b"]),
            stage="chat", occurred_at=rng.choice(MONTHS),
            student_id=rng.choice([None, "st_0000000000000001", "st_0000000000000002"]),
            message_id=f"cm_{i:016x}")


def _summed(ledger: Ledger, creator: str, month: str, student: str | None = None) -> Decimal:
    sql = ("SELECT coalesce(sum(cost_usd), 0) FROM cost_records WHERE creator_id = ? "
           "AND strftime(occurred_at, '%Y-%m') = ?")
    params: list[object] = [creator, month]
    if student:
        sql += " AND student_id = ?"
        params.append(student)
    return Decimal(ledger.query(sql, params)[1][0][0])


def _assert_in_step(ledger: Ledger) -> None:
    totals = _totals(ledger)
    for creator in ("cr_000000000000000a", "cr_000000000000000b"):
        for month in ("2026-10", "2026-11"):
            for student in (None, "st_0000000000000001", "st_0000000000000002"):
                assert totals.spent(ledger, creator, month, student) == _summed(
                    ledger, creator, month, student)
    assert totals.check(ledger) == []


def test_kept_totals_equal_the_sum_over_the_ledger_after_many_appends(ledger: Ledger) -> None:
    _spend(ledger, 80)
    _assert_in_step(ledger)
    compact_ledger(ledger, grace_s=0)
    _assert_in_step(ledger)


def test_a_call_whose_count_was_lost_is_found_and_counted_once(
    ledger: Ledger, tmp_path: Path,
) -> None:
    _spend(ledger, 10)
    # A crash between the file and its count: the same files, written without counting.
    uncounted = Ledger(ledger.root, ledger.prices)
    _spend(uncounted, 3, seed=9)
    totals = _totals(ledger)
    assert totals.check(ledger) != []
    assert totals.reconcile(ledger) == 3
    assert totals.reconcile(ledger) == 0
    _assert_in_step(ledger)


def test_drift_is_detected_and_a_rebuild_repairs_it(ledger: Ledger, catalog: Catalog) -> None:
    _spend(ledger, 30)
    with catalog.engine.begin() as connection:
        connection.execute(text("UPDATE ledger_totals SET cost_pusd = cost_pusd + 5"))
        connection.execute(text("DELETE FROM ledger_calls WHERE call_id IN "
                                "(SELECT call_id FROM ledger_calls LIMIT 2)"))
    totals = _totals(ledger)
    drifts = totals.check(ledger)
    assert drifts and all(d.kept_usd - d.ledger_usd == Decimal("0.000000000005")
                          for d in drifts)
    calls, _rows = totals.rebuild(ledger)
    _, (( distinct,),) = ledger.query("SELECT count(DISTINCT call_id) FROM cost_records")
    assert calls == distinct == 30
    _assert_in_step(ledger)


def test_a_catalog_without_totals_is_filled_from_the_ledger_on_first_read(
    catalog: Catalog, tmp_path: Path,
) -> None:
    # Records written before the totals existed (before migration 0004 was applied).
    before = Ledger(tmp_path / "ledger", PriceTable.load())
    _spend(before, 12)
    ledger = Ledger(before.root, before.prices, totals=LedgerTotals(catalog))
    _assert_in_step(ledger)


def test_budget_checks_read_the_kept_totals(ledger: Ledger, catalog: Catalog) -> None:
    creator, _ = catalog.create_creator("Ada")
    budgets = Budgets(catalog, ledger)
    catalog.set_budget(creator.id, Decimal("0.01"))
    student = "st_0000000000000001"
    ledger.record(Usage("anthropic", "claude-haiku-4-5", {"output_token": 1000}),
                  creator_id=creator.id, stage="chat", student_id=student)  # $0.005
    assert budgets.spent_this_month(creator.id) == Decimal("0.005")
    assert budgets.student_spent_this_month(creator.id, student) == Decimal("0.005")
    assert budgets.record_alerts(creator.id) == [50]
    budgets.enforce(creator.id)
    ledger.record(Usage("anthropic", "claude-haiku-4-5", {"output_token": 1000}),
                  creator_id=creator.id, stage="chat")
    with pytest.raises(BudgetExceededError, match="spending limit"):
        budgets.enforce(creator.id)
    assert budgets.student_spent_this_month(creator.id, student) == Decimal("0.005")
