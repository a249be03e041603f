"""What holding a paid step's expected cost costs: reserve + settle against the plain check.

``python -m benchmarks.spend_reservations [RUNS]`` builds a SQLite catalog with kept totals
(1,000 calls on the ledger of one creator with a budget, 5 other steps' holds in flight) and
times, in the same process:

- the plain budget check the steps used before (budget row + month-to-date total),
- ``Budgets.check`` (the same, plus what steps in flight hold),
- ``Budgets.reserve`` + ``Reservation.settle`` (one conditional INSERT … SELECT, one DELETE).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from chronos_pipeline.lib.budgets import Budgets
from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.ledger_totals import LedgerTotals
from chronos_pipeline.lib.pricing import PriceTable

STEP = [Usage("openai", "text-embedding-3-small", {"input_token": 50_000})]


def _timed(function: Callable[[], object], runs: int) -> list[float]:
    function()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    runs = int(args[0]) if args else 300
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(f"sqlite:///{Path(tmp) / 'catalog.sqlite3'}")
        ledger = Ledger(Path(tmp) / "ledger", PriceTable.load(), totals=LedgerTotals(catalog))
        budgets = Budgets(catalog, ledger)
        creator, _ = catalog.create_creator("Bench")
        catalog.set_budget(creator.id, Decimal("1000"))
        for n in range(1000):
            ledger.record(Usage("anthropic", "claude-haiku-4-5",
                                {"input_token": 900 + n, "output_token": 120}),
                          creator_id=creator.id, stage="chat")
        in_flight = [budgets.reserve(creator.id, STEP, stage="embed") for _ in range(5)]

        def plain_check() -> None:
            budget = catalog.get_budget(creator.id)
            assert budget is not None
            assert budgets.spent_this_month(creator.id, datetime.now(UTC)) < budget.hard_limit_usd

        def reserve_and_settle() -> None:
            budgets.reserve(creator.id, STEP, stage="embed").settle()

        rows = [
            ("plain check (budget + month-to-date)", _timed(plain_check, runs)),
            ("Budgets.check (+ held in flight)", _timed(lambda: budgets.check(creator.id), runs)),
            ("reserve + settle", _timed(reserve_and_settle, runs)),
        ]
        for reservation in in_flight:
            reservation.settle()
        catalog.close()

    baseline = statistics.median(rows[0][1])
    print(f"SQLite catalog, {runs} runs each, 1,000 calls kept in totals, 5 holds in flight")
    print(f"{'operation':<40}{'median ms':>10}{'p95 ms':>9}{'x plain':>9}")
    for name, times in rows:
        median = statistics.median(times)
        p95 = sorted(times)[int(len(times) * 0.95) - 1]
        print(f"{name:<40}{median:>10.2f}{p95:>9.2f}{median / baseline:>9.1f}")


if __name__ == "__main__":
    main()
