"""The ledger: one record per billable unit, priced from the table, read with DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from chronos_pipeline.lib.errors import PricingError
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.pricing import PriceTable

CREATOR = "cr_0123456789abcdef"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger", PriceTable.load())


def test_empty_ledger_answers_queries_with_no_rows(ledger: Ledger) -> None:
    _columns, rows = ledger.query("SELECT count(*) AS n, sum(cost_usd) FROM cost_records")
    assert rows == [(0, None)]


def test_local_usage_is_recorded_at_zero_with_real_units(ledger: Ledger) -> None:
    ledger.record(Usage("local", "faster-whisper/tiny.en", {"audio_second": 199.04}),
                  creator_id=CREATOR, stage="transcribe", video_id="vd_0123456789abcdef")
    _, rows = ledger.query(
        "SELECT stage, provider, unit, quantity, cost_usd, price_table_version, estimated "
        "FROM cost_records"
    )
    assert rows == [("transcribe", "local", "audio_second", 199.04, Decimal(0), "2026-11-01",
                     False)]


def test_paid_usage_is_priced_per_unit_exactly(ledger: Ledger) -> None:
    ledger.record(
        Usage("anthropic", "claude-haiku-4-5",
              {"input_token": 1200, "output_token": 300, "cache_read_token": 50_000}),
        creator_id=CREATOR, stage="chat", occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    _, rows = ledger.query("SELECT sum(cost_usd) FROM cost_records")
    # 1200 × $1/M + 300 × $5/M + 50 000 × $0.10/M = 0.0012 + 0.0015 + 0.005
    assert rows[0][0] == Decimal("0.0077")


def test_a_model_without_a_price_is_an_error_that_names_it(ledger: Ledger) -> None:
    with pytest.raises(PricingError, match="gpt-imaginary"):
        ledger.record(Usage("openai", "gpt-imaginary", {"input_token": 10}),
                      creator_id=CREATOR, stage="chat")
    _, rows = ledger.query("SELECT count(*) FROM cost_records")
    assert rows == [(0,)]


def test_appends_are_separate_files_and_all_are_read(ledger: Ledger) -> None:
    for _ in range(3):
        ledger.record(Usage("local", "local-disk", {"byte_month": 10.0}),
                      creator_id=CREATOR, stage="upload")
    assert len(list(ledger.root.glob("day=*/*.parquet"))) == 3
    _, rows = ledger.query("SELECT count(*), sum(quantity) FROM cost_records")
    assert rows == [(3, 30.0)]
