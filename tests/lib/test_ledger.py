"""The ledger: one record per billable unit, priced from the table, read with DuckDB."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chronos_pipeline.lib.errors import PricingError
from chronos_pipeline.lib.ledger import SCHEMA, Ledger, Usage
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
    assert rows == [("transcribe", "local", "audio_second", Decimal("199.04"), Decimal(0),
                     "2026-11-01", False)]


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


def test_files_written_before_student_id_existed_still_read_beside_new_ones(
    ledger: Ledger,
) -> None:
    # A file exactly as the ledger wrote it before the student_id column was added.
    old_schema = pa.schema([f for f in SCHEMA if f.name != "student_id"])
    old = ledger.price(Usage("anthropic", "claude-haiku-4-5", {"output_token": 1000}),
                       creator_id=CREATOR, stage="chat",
                       occurred_at=datetime(2026, 11, 20, tzinfo=UTC))
    rows = [{k: v for k, v in asdict(r).items() if k != "student_id"} for r in old]
    (ledger.root / "day=2026-11-20").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=old_schema),
                   ledger.root / "day=2026-11-20" / "old.parquet")
    ledger.record(Usage("anthropic", "claude-haiku-4-5", {"output_token": 2000}),
                  creator_id=CREATOR, stage="chat", student_id="st_0123456789abcdef",
                  occurred_at=datetime(2026, 11, 21, tzinfo=UTC))

    columns, _ = ledger.query("SELECT * FROM cost_records")
    assert columns == SCHEMA.names
    _, rows_back = ledger.query(
        "SELECT student_id, cost_usd FROM cost_records ORDER BY occurred_at")
    assert rows_back == [(None, Decimal("0.005")), ("st_0123456789abcdef", Decimal("0.01"))]
    _, total = ledger.query("SELECT sum(cost_usd) FROM cost_records WHERE creator_id = ?",
                            [CREATOR])
    assert total == [(Decimal("0.015"),)]


def test_a_ledger_of_only_old_files_still_has_a_student_id_column(ledger: Ledger) -> None:
    old_schema = pa.schema([f for f in SCHEMA if f.name != "student_id"])
    old = ledger.price(Usage("local", "local-disk", {"byte_month": 5.0}),
                       creator_id=CREATOR, stage="upload")
    (ledger.root / "day=2026-11-20").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([{k: v for k, v in asdict(r).items() if k != "student_id"}
                              for r in old], schema=old_schema),
        ledger.root / "day=2026-11-20" / "old.parquet")
    _, rows = ledger.query("SELECT count(*) FROM cost_records WHERE student_id IS NULL")
    assert rows == [(1,)]


def test_one_call_is_one_call_id_shared_by_its_unit_records(ledger: Ledger) -> None:
    ledger.record(Usage("anthropic", "claude-haiku-4-5", {"input_token": 10, "output_token": 3}),
                  creator_id=CREATOR, stage="chat")
    ledger.record(Usage("anthropic", "claude-haiku-4-5", {"input_token": 5}),
                  creator_id=CREATOR, stage="chat")
    _, rows = ledger.query("SELECT call_id, count(*) FROM cost_records GROUP BY call_id "
                           "ORDER BY 2 DESC")
    assert [n for _, n in rows] == [2, 1]
    assert all(call_id for call_id, _ in rows)


def test_quantity_is_stored_as_an_exact_decimal(ledger: Ledger) -> None:
    written = ledger.record(Usage("openai", "whisper-1", {"audio_second": 0.1}),
                            creator_id=CREATOR, stage="transcribe")
    [path] = list(ledger.root.glob("day=*/*.parquet"))
    assert pq.read_schema(path).field("quantity").type == pa.decimal128(38, 12)
    assert written[0].quantity == Decimal("0.1")
    _, rows = ledger.query("SELECT quantity * 3 FROM cost_records")
    assert rows == [(Decimal("0.3"),)]  # 0.1 as a float would give 0.30000000000000004


def test_an_old_float_quantity_file_reads_beside_decimal_ones(ledger: Ledger) -> None:
    old_schema = pa.schema([pa.field("quantity", pa.float64()) if f.name == "quantity" else f
                            for f in SCHEMA if f.name not in ("call_id", "student_id")])
    old = ledger.price(Usage("openai", "whisper-1", {"audio_second": 199.04}),
                       creator_id=CREATOR, stage="transcribe",
                       occurred_at=datetime(2026, 11, 20, tzinfo=UTC))
    rows = [{**{k: v for k, v in asdict(r).items() if k in old_schema.names},
             "quantity": float(r.quantity)} for r in old]
    (ledger.root / "day=2026-11-20").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=old_schema),
                   ledger.root / "day=2026-11-20" / "old.parquet")
    ledger.record(Usage("openai", "whisper-1", {"audio_second": 0.5}), creator_id=CREATOR,
                  stage="transcribe", occurred_at=datetime(2026, 11, 21, tzinfo=UTC))
    _, back = ledger.query("SELECT quantity, call_id IS NULL FROM cost_records "
                           "ORDER BY occurred_at")
    assert back == [(Decimal("199.04"), True), (Decimal("0.5"), False)]
