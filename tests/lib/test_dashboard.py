"""The creator's usage dashboard and export, over a real ledger and a real catalog."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.dashboard import DashboardFilters, build_dashboard, export_records
from chronos_pipeline.lib.errors import NotFoundError, ValidationError
from chronos_pipeline.lib.ledger import SCHEMA, STAGES, CostRecord, Ledger, Usage
from chronos_pipeline.lib.pricing import PriceTable

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
WHISPER = "faster-whisper/tiny.en"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
EXTRACTIVE = "chronos-extractive-v1"
HAIKU = "claude-haiku-4-5"


def at(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 10, tzinfo=UTC)


@dataclass
class World:
    ledger: Ledger
    catalog: Catalog
    creator: str
    other: str
    course: str
    other_course: str
    lecture: str  # course 1
    local_lecture: str  # course 1, transcribed locally
    course2_lecture: str
    deleted_lecture: str
    session: str  # course 1
    other_records: list[CostRecord]

    def dashboard(self, **filters: Any) -> Any:
        return build_dashboard(self.ledger, self.catalog, self.creator,
                               DashboardFilters(**filters), now=NOW)

    def sql(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return self.ledger.query(sql, params)[1]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    ledger = Ledger(tmp_path / "ledger", PriceTable.load())
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    creator, _ = catalog.create_creator("Ada")
    other, _ = catalog.create_creator("Grace")
    course = catalog.create_course(creator.id, "Biology")
    course2 = catalog.create_course(creator.id, "History")
    other_course = catalog.create_course(other.id, "Secret")
    v1 = catalog.create_video(creator.id, "Photosynthesis", course.id)
    v2 = catalog.create_video(creator.id, "Cells", course.id)
    v3 = catalog.create_video(creator.id, "Revolution", course2.id)
    gone = catalog.create_video(creator.id, "Draft that was removed", course.id)
    catalog.delete_video(gone.id)
    session = catalog.create_chat_session(creator.id, course.id)
    other_video = catalog.create_video(other.id, "Grace's private lecture", other_course.id)
    other_session = catalog.create_chat_session(other.id, other_course.id)

    def put(usage: Usage, stage: str, when: datetime, **context: Any) -> list[CostRecord]:
        return ledger.record(usage, creator_id=context.pop("creator", creator.id), stage=stage,
                             occurred_at=when, **context)

    put(Usage("openai", "whisper-1", {"audio_second": 600}), "transcribe", at(3),
        video_id=v1.id)                                                      # $0.06
    put(Usage("local", MINILM, {"input_token": 50_000}), "embed", at(3), video_id=v1.id)
    put(Usage("local", WHISPER, {"audio_second": 1200}), "transcribe", at(10), video_id=v2.id)
    put(Usage("openai", "text-embedding-3-small", {"input_token": 10_000}), "embed", at(15),
        video_id=v3.id)                                                      # $0.0002
    put(Usage("openai", "whisper-1", {"audio_second": 60}), "transcribe", at(12),
        video_id=gone.id)                                                    # $0.006
    put(Usage("anthropic", HAIKU, {"input_token": 2000, "output_token": 500}), "chat", at(18),
        chat_session_id=session.id, student_id="st_aaaaaaaaaaaaaaaa",
        message_id="cm_0000000000000001")                                    # $0.0045
    put(Usage("local", MINILM, {"input_token": 20}), "query-embed", at(19),
        chat_session_id=session.id, student_id="st_bbbbbbbbbbbbbbbb",
        message_id="cm_0000000000000002")
    put(Usage("local", EXTRACTIVE, {"input_token": 3000, "output_token": 400}, estimated=True),
        "chat", at(19), chat_session_id=session.id, student_id="st_bbbbbbbbbbbbbbbb",
        message_id="cm_0000000000000002")
    put(Usage("anthropic", HAIKU, {"output_token": 1000}), "chat", at(25, month=10),
        student_id="st_aaaaaaaaaaaaaaaa", message_id="cm_0000000000000003")  # $0.005, October
    other_records = [
        *put(Usage("anthropic", HAIKU, {"output_token": 100_000}), "chat", at(18),
             creator=other.id, chat_session_id=other_session.id,
             student_id="st_cccccccccccccccc"),                              # $0.5
        *put(Usage("local", WHISPER, {"audio_second": 3600}), "transcribe", at(18),
             creator=other.id, video_id=other_video.id),
    ]
    yield World(ledger, catalog, creator.id, other.id, course.id, other_course.id, v1.id,
                v2.id, v3.id, gone.id, session.id, other_records)
    catalog.close()


def test_month_to_date_and_per_stage_totals_equal_plain_sql(world: World) -> None:
    world.catalog.set_budget(world.creator, Decimal("0.1"), Decimal("0.15"))
    world.catalog.record_budget_alert(world.creator, "2026-11", 50, Decimal("0.07"))
    world.catalog.record_budget_alert(world.creator, "2026-10", 50, Decimal("0.06"))
    board = world.dashboard()

    [(mtd,)] = world.sql("SELECT sum(cost_usd) FROM cost_records WHERE creator_id = ? "
                         "AND occurred_at >= ? AND occurred_at <= ?",
                         [world.creator, datetime(2026, 11, 1, tzinfo=UTC), NOW])
    assert board.month.spent_usd == mtd == Decimal("0.0707")
    assert board.month.month == "2026-11"
    # $0.0707 in 19.5 of 30 days → $0.10876… by the end of November.
    assert board.month.projected_usd == (mtd * 30 / Decimal("19.5")).quantize(Decimal("1e-12"))
    assert (board.month.monthly_usd, board.month.hard_limit_usd) == (Decimal("0.1"),
                                                                      Decimal("0.15"))
    assert board.month.percent == Decimal("70.7")
    assert [(m.threshold, m.usd, m.reached) for m in board.month.marks] == [
        (50, Decimal("0.05"), True), (80, Decimal("0.08"), False), (100, Decimal("0.1"), False)]
    assert [(a.month, a.threshold) for a in board.month.alerts] == [("2026-11", 50)]

    # The default period is the 30 days up to today, October's last days included.
    assert (board.filters.since, board.filters.until) == (date(2026, 10, 22), date(2026, 11, 20))
    assert [d.day for d in board.days][0::29] == [date(2026, 10, 22), date(2026, 11, 20)]
    assert len(board.days) == 30
    by_stage = dict(world.sql(
        "SELECT stage, sum(cost_usd) FROM cost_records WHERE creator_id = ? "
        "AND occurred_at >= ? AND occurred_at < ? GROUP BY stage",
        [world.creator, datetime(2026, 10, 22, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC)]))
    for stage in STAGES:
        assert sum((d.by_stage[stage] for d in board.days), Decimal(0)) == by_stage.get(
            stage, Decimal(0))
    assert board.period_total_usd == sum(by_stage.values()) == Decimal("0.0757")
    day3 = next(d for d in board.days if d.day == date(2026, 11, 3))
    assert day3.by_stage["transcribe"] == Decimal("0.06") and day3.total_usd == Decimal("0.06")
    assert board.stage_series["chat"][3] == Decimal("0.005")  # 25 October
    assert all(d.total_usd == 0 for d in board.days if d.day.day in (1, 2, 4, 20))


def test_totals_by_provider_and_model_carry_cost_and_quantity_per_unit(world: World) -> None:
    board = world.dashboard()
    models = {(m.provider, m.model): m for m in board.by_model}
    assert board.by_model[0].model == "whisper-1"  # the most expensive first
    assert models[("openai", "whisper-1")].cost_usd == Decimal("0.066")
    assert [(u.unit, u.quantity) for u in models[("openai", "whisper-1")].units] == [
        ("audio_second", 660.0)]
    haiku = models[("anthropic", HAIKU)]
    assert haiku.cost_usd == Decimal("0.0095")
    assert [(u.unit, u.quantity, u.cost_usd) for u in haiku.units] == [
        ("input_token", 2000.0, Decimal("0.002")), ("output_token", 1500.0, Decimal("0.0075"))]
    assert models[("local", MINILM)].units[0].quantity == 50_020.0


def test_top_lectures_name_deleted_ones_and_top_students_are_ranked(world: World) -> None:
    board = world.dashboard()
    assert [(lec.title, lec.cost_usd, lec.deleted) for lec in board.top_lectures] == [
        ("Photosynthesis", Decimal("0.06"), False),
        (f"(deleted lecture {world.deleted_lecture})", Decimal("0.006"), True),
        ("Revolution", Decimal("0.0002"), False),
        ("Cells", Decimal(0), False),
    ]
    assert [(s.student_id, s.cost_usd, s.questions) for s in board.top_students] == [
        ("st_aaaaaaaaaaaaaaaa", Decimal("0.0095"), 2),
        ("st_bbbbbbbbbbbbbbbb", Decimal(0), 1),
    ]


def test_latest_records_are_the_newest_fifty_with_every_detail(world: World) -> None:
    for n in range(55):
        world.ledger.record(Usage("anthropic", HAIKU, {"input_token": 100 + n}),
                            creator_id=world.creator, stage="chat",
                            occurred_at=datetime(2026, 11, 20, 0, n, tzinfo=UTC),
                            student_id="st_dddddddddddddddd")
    board = world.dashboard()
    assert len(board.latest) == 50
    assert [r.quantity for r in board.latest[:2]] == [154.0, 153.0]
    newest = board.latest[0]
    assert (newest.stage, newest.provider, newest.model, newest.unit, newest.student_id,
            newest.estimated) == ("chat", "anthropic", HAIKU, "input_token",
                                  "st_dddddddddddddddd", False)
    assert newest.unit_price_usd == Decimal("0.000001")
    assert newest.cost_usd == Decimal("0.000154")
    assert newest.occurred_at == datetime(2026, 11, 20, 0, 54, tzinfo=UTC)


def test_filters_narrow_every_widget_to_a_course_a_lecture_or_dates(world: World) -> None:
    course = world.dashboard(course_id=world.course)
    # Course 1: its lectures (the deleted one's row is gone, so it no longer counts) and its
    # chat session; not course 2's lecture, not October's chat outside any session.
    [(expected,)] = world.sql(
        "SELECT sum(cost_usd) FROM cost_records WHERE creator_id = ? AND "
        "(video_id IN (?, ?) OR chat_session_id = ?)",
        [world.creator, world.lecture, world.local_lecture, world.session])
    assert course.period_total_usd == expected == Decimal("0.0645")
    assert {lec.video_id for lec in course.top_lectures} == {world.lecture, world.local_lecture}
    assert {r.video_id for r in course.latest} <= {world.lecture, world.local_lecture, None}
    assert course.month.spent_usd == Decimal("0.0707")  # the budget covers everything

    lecture = world.dashboard(video_id=world.course2_lecture)
    assert lecture.period_total_usd == Decimal("0.0002")
    assert [r.video_id for r in lecture.latest] == [world.course2_lecture]
    assert lecture.top_students == []

    november = world.dashboard(since=date(2026, 11, 3), until=date(2026, 11, 12))
    assert (november.days[0].day, november.days[-1].day) == (date(2026, 11, 3),
                                                              date(2026, 11, 12))
    assert len(november.days) == 10
    assert november.period_total_usd == Decimal("0.066")  # 3rd and 12th both included
    assert {r.occurred_at.date() for r in november.latest} == {
        date(2026, 11, 3), date(2026, 11, 10), date(2026, 11, 12)}


def test_bad_filters_are_refused_with_a_reason(world: World) -> None:
    with pytest.raises(ValidationError, match="after"):
        world.dashboard(since=date(2026, 11, 5), until=date(2026, 11, 1))
    with pytest.raises(ValidationError, match="not a valid video id"):
        world.dashboard(video_id="'; DROP TABLE x; --")
    with pytest.raises(ValidationError, match="at most 366 days"):
        world.dashboard(since=date(2020, 1, 1))
    with pytest.raises(NotFoundError):
        world.dashboard(course_id=world.other_course)


def test_cloud_equivalent_reprices_local_usage_by_hand(world: World) -> None:
    cloud = world.dashboard().cloud
    lines = {(ln.stage, ln.local_unit): ln for ln in cloud.lines}
    # 1200 s of local Whisper under whisper-1 at $0.006/min: 20 min → $0.12.
    transcribe = lines[("transcribe", "audio_second")]
    assert (transcribe.cloud_model, transcribe.cloud_quantity, transcribe.cloud_usd) == (
        "whisper-1", Decimal(1200), Decimal("0.12"))
    # 50 000 embedding word pieces at $0.02/M → $0.001; 20 query word pieces → $0.0000004.
    assert lines[("embed", "input_token")].cloud_usd == Decimal("0.001")
    assert lines[("query-embed", "input_token")].cloud_model == "text-embedding-3-small"
    assert lines[("query-embed", "input_token")].cloud_usd == Decimal("0.0000004")
    # The extractive answer under Haiku: 3000 in × $1/M + 400 out × $5/M = $0.003 + $0.002.
    assert lines[("chat", "input_token")].cloud_usd == Decimal("0.003")
    assert lines[("chat", "output_token")].cloud_usd == Decimal("0.002")
    assert lines[("chat", "output_token")].cloud_provider == "anthropic"
    assert cloud.total_usd == Decimal("0.1260004")
    assert cloud.estimated  # token counts are word pieces, not the cloud's tokens
    assert len(cloud.lines) == 5  # paid records are not re-priced

    only_course2 = world.dashboard(video_id=world.course2_lecture).cloud
    assert (only_course2.lines, only_course2.total_usd) == ([], Decimal(0))


def _all_text(value: Any) -> str:
    return repr(asdict(value))


def test_another_creators_records_never_appear_anywhere(world: World) -> None:
    board = world.dashboard()
    dump = _all_text(board)
    for record in world.other_records:
        assert record.record_id not in dump
    assert "st_cccccccccccccccc" not in dump and "Grace" not in dump
    assert board.period_total_usd == Decimal("0.0757")  # not $0.5 more
    assert all(r.creator_id == world.creator for r in board.latest)
    # Grace's local Whisper hour (3600 s → $0.36 on the cloud) is not in Ada's equivalent.
    assert board.cloud.total_usd == Decimal("0.1260004")
    for fmt in ("csv", "parquet"):
        exported = b"".join(export_records(world.ledger, world.catalog, world.creator,
                                           DashboardFilters(), fmt))
        for record in world.other_records:
            assert record.record_id.encode() not in exported
    grace = build_dashboard(world.ledger, world.catalog, world.other, DashboardFilters(),
                            now=NOW)
    assert grace.period_total_usd == Decimal("0.5")
    assert [lec.title for lec in grace.top_lectures] == ["Grace's private lecture"]


def _records(world: World) -> list[dict[str, Any]]:
    columns, rows = world.ledger.query(
        "SELECT * FROM cost_records WHERE creator_id = ? ORDER BY occurred_at, record_id",
        [world.creator])
    return [dict(zip(columns, row, strict=True)) for row in rows]


def test_export_csv_round_trips_every_record_with_exact_money(world: World) -> None:
    chunks = export_records(world.ledger, world.catalog, world.creator, DashboardFilters(),
                            "csv")
    reader = csv.DictReader(io.StringIO(b"".join(chunks).decode()))
    assert reader.fieldnames == SCHEMA.names
    exported = list(reader)
    expected = _records(world)
    assert len(exported) == len(expected) == 11
    for row, record in zip(exported, expected, strict=True):
        assert Decimal(row["cost_usd"]) == record["cost_usd"]
        assert Decimal(row["unit_price_usd"]) == record["unit_price_usd"]
        assert datetime.fromisoformat(row["occurred_at"]) == record["occurred_at"]
        assert float(row["quantity"]) == record["quantity"]
        assert row["estimated"] == ("true" if record["estimated"] else "false")
        for name in ("record_id", "stage", "provider", "model", "unit", "video_id",
                     "chat_session_id", "message_id", "student_id"):
            assert (row[name] or None) == record[name]
    # A per-token price is written out exactly, never as 1E-6.
    assert {r["unit_price_usd"] for r in exported if r["model"] == HAIKU} >= {
        "0.000001000000"}

    november = b"".join(export_records(world.ledger, world.catalog, world.creator,
                                       DashboardFilters(since=date(2026, 11, 1)), "csv"))
    assert len(list(csv.DictReader(io.StringIO(november.decode())))) == 10


def test_export_parquet_round_trips_every_record(world: World) -> None:
    data = b"".join(export_records(world.ledger, world.catalog, world.creator,
                                   DashboardFilters(course_id=world.course), "parquet"))
    table = pq.read_table(io.BytesIO(data))
    assert table.schema.equals(SCHEMA)
    course_ids = {world.lecture, world.local_lecture}
    expected = [r for r in _records(world)
                if r["video_id"] in course_ids or r["chat_session_id"] == world.session]
    assert table.to_pylist() == expected


def test_unknown_export_format_is_refused(world: World) -> None:
    with pytest.raises(ValidationError, match="csv or parquet"):
        export_records(world.ledger, world.catalog, world.creator, DashboardFilters(),
                       "xlsx")  # type: ignore[arg-type]


def test_a_creator_with_no_records_sees_zero_filled_days(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger", PriceTable.load())
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    creator, _ = catalog.create_creator("New")
    board = build_dashboard(ledger, catalog, creator.id, DashboardFilters(), now=NOW)
    catalog.close()
    assert len(board.days) == 30 and all(d.total_usd == 0 for d in board.days)
    assert board.month.spent_usd == 0 and board.month.monthly_usd is None
    assert board.latest == [] and board.month.marks == []
    assert board.cloud.total_usd == 0 and board.top_lectures == []
