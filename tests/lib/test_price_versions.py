"""Prices have effective dates; re-pricing shows another version without rewriting history."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from chronos_pipeline.lib import costs
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.pricing import DEFAULT_TABLE, PriceTable

CREATOR = "cr_0123456789abcdef"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    table = json.loads(DEFAULT_TABLE.read_text())
    later = json.loads(json.dumps(table["versions"][0]))
    later["version"], later["effective_from"] = "2027-01-01", "2027-01-01"
    for price in later["prices"]:
        if price["model"] == "claude-haiku-4-5" and price["unit"] == "output_token":
            price["usd"] = "4.00"
    table["versions"].append(later)
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(table))
    return Ledger(tmp_path / "ledger", PriceTable.load(path))


def _chat(ledger: Ledger, when: datetime) -> None:
    ledger.record(Usage("anthropic", "claude-haiku-4-5", {"output_token": 1_000_000}),
                  creator_id=CREATOR, stage="chat", occurred_at=when)


def test_each_record_is_priced_by_the_table_in_force_when_it_happened(ledger: Ledger) -> None:
    _chat(ledger, datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    _chat(ledger, datetime(2027, 1, 1, 1, 0, tzinfo=UTC))
    _, rows = ledger.query(
        "SELECT price_table_version, cost_usd FROM cost_records ORDER BY occurred_at")
    assert rows == [("2026-11-01", Decimal(5)), ("2027-01-01", Decimal(4))]


def test_recompute_reprices_without_rewriting_the_ledger(ledger: Ledger) -> None:
    _chat(ledger, datetime(2026, 12, 1, tzinfo=UTC))
    files = {p: p.read_bytes() for p in ledger.root.rglob("*.parquet")}
    [row] = costs.recompute(ledger, date(2027, 2, 1))
    assert (row.recorded_usd, row.repriced_usd, row.price_table_version) == (
        Decimal(5), Decimal(4), "2027-01-01")
    assert {p: p.read_bytes() for p in ledger.root.rglob("*.parquet")} == files
    [same] = costs.recompute(ledger, date(2026, 12, 15))
    assert same.repriced_usd == Decimal(5)


def test_month_to_date_projects_spend_to_the_month_end(ledger: Ledger) -> None:
    _chat(ledger, datetime(2026, 11, 5, tzinfo=UTC))
    summary = costs.month_to_date(ledger, CREATOR, now=datetime(2026, 11, 10, tzinfo=UTC))
    # $5 in 9 days of a 30-day month → $16.67 by the end of it.
    assert summary.spent_usd == Decimal(5)
    assert float(summary.projected_usd) == pytest.approx(5 * 30 / 9, abs=1e-4)
