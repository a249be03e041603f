"""A creator's usage dashboard and record export, read from the cost ledger.

One parameterised DuckDB query copies the creator's rows for the period into a temporary
table; every widget is aggregated from that copy, so the ledger files are read once per
dashboard. This month's spend (which the budget covers) is the maintained total
(``ledger_totals``) where the ledger keeps one, else this month's rows join the copy.
Money is ``Decimal`` throughout.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from chronos_pipeline.lib import ids
from chronos_pipeline.lib.catalog import BudgetAlert, Catalog
from chronos_pipeline.lib.costs import month_start, project_month_end
from chronos_pipeline.lib.errors import NotFoundError, ValidationError
from chronos_pipeline.lib.ledger import QUANTUM, SCHEMA, STAGES, CostRecord, Ledger
from chronos_pipeline.lib.ledger_totals import from_pusd, month_spent
from chronos_pipeline.lib.spend_reservations import SpendReservations

DEFAULT_DAYS = 30
MAX_DAYS = 366
TOP = 10
LATEST = 50
THRESHOLDS = (50, 80, 100)

# Providers that run on our own machines (the self-hosted OpenAI-compatible server too):
# their records cost $0, and the dashboard shows what the same usage would cost on the cloud.
LOCAL_PROVIDERS = ("local", "openai-compatible")

# The cloud model each stage's local usage is re-priced under: change them here.
CLOUD_MODELS: dict[str, tuple[str, str]] = {
    "transcribe": ("openai", "whisper-1"),
    "embed": ("openai", "text-embedding-3-small"),
    "query-embed": ("openai", "text-embedding-3-small"),
    "rewrite": ("anthropic", "claude-haiku-4-5"),
    "chat": ("anthropic", "claude-haiku-4-5"),
    "title": ("anthropic", "claude-haiku-4-5"),
}

# Local unit → (cloud unit, cloud units per local unit).
# - audio_second: OpenAI publishes whisper-1 per minute but bills to the nearest second; the
#   price table already stores it per audio_second ($0.006 / 60), so a second is a second.
# - input_token / output_token: local counts are MiniLM word pieces (the extractive chat
#   counts its words with the same tokenizer), the cloud bills its own BPE tokens. For
#   English lecture text the two counts are close, so we take one word piece as one cloud
#   token and mark the result an estimate. The local embedder also bills at most 256 word
#   pieces per chunk (what it reads); a cloud embedder would read the whole chunk.
UNIT_CONVERSIONS: dict[str, tuple[str, Decimal]] = {
    "audio_second": ("audio_second", Decimal(1)),
    "input_token": ("input_token", Decimal(1)),
    "output_token": ("output_token", Decimal(1)),
}

ExportFormat = Literal["csv", "parquet"]


@dataclass(frozen=True)
class DashboardFilters:
    """What the creator narrowed the dashboard to; ``until`` is inclusive, days are UTC."""

    course_id: str | None = None
    video_id: str | None = None
    since: date | None = None
    until: date | None = None

    def __post_init__(self) -> None:
        if self.course_id is not None:
            ids.require(self.course_id, "course")
        if self.video_id is not None:
            ids.require(self.video_id, "video")
        if self.since and self.until and self.since > self.until:
            raise ValidationError(f"since ({self.since}) is after until ({self.until})")

    def period(self, today: date) -> tuple[date, date]:
        """The first and last day shown: by default the last 30 days up to ``today``."""
        until = self.until or max(today, self.since or today)
        since = self.since or until - timedelta(days=DEFAULT_DAYS - 1)
        if (until - since).days + 1 > MAX_DAYS:
            raise ValidationError(f"choose a period of at most {MAX_DAYS} days")
        return since, until


@dataclass(frozen=True)
class BudgetMark:
    threshold: int
    usd: Decimal
    reached: bool


@dataclass(frozen=True)
class MonthToDate:
    """All of this month's spend (the budget covers it all: no filter applies)."""

    month: str
    spent_usd: Decimal
    projected_usd: Decimal
    days_elapsed: float
    days_in_month: int
    monthly_usd: Decimal | None
    hard_limit_usd: Decimal | None
    percent: Decimal | None
    marks: list[BudgetMark]
    alerts: list[BudgetAlert]
    # Held by paid steps in flight (their expected cost, until they settle).
    reserved_usd: Decimal = Decimal(0)


@dataclass(frozen=True)
class DayCost:
    day: date
    by_stage: dict[str, Decimal]
    total_usd: Decimal


@dataclass(frozen=True)
class UnitTotal:
    unit: str
    quantity: float
    cost_usd: Decimal


@dataclass(frozen=True)
class ModelTotal:
    provider: str
    model: str
    cost_usd: Decimal
    units: list[UnitTotal]


@dataclass(frozen=True)
class LectureCost:
    video_id: str
    title: str
    deleted: bool
    cost_usd: Decimal
    records: int


@dataclass(frozen=True)
class StudentCost:
    student_id: str
    cost_usd: Decimal
    questions: int


@dataclass(frozen=True)
class CloudLine:
    stage: str
    local_provider: str
    local_model: str
    local_unit: str
    local_quantity: float
    cloud_provider: str
    cloud_model: str
    cloud_unit: str
    cloud_quantity: Decimal
    cloud_usd: Decimal


@dataclass(frozen=True)
class CloudEquivalent:
    """What the period's local usage would have cost under ``CLOUD_MODELS``."""

    lines: list[CloudLine]
    total_usd: Decimal
    # Token counts are converted approximately (see UNIT_CONVERSIONS).
    estimated: bool


@dataclass(frozen=True)
class Dashboard:
    creator_id: str
    filters: DashboardFilters
    generated_at: datetime
    month: MonthToDate
    stages: tuple[str, ...]
    days: list[DayCost]
    period_total_usd: Decimal
    period_records: int
    by_model: list[ModelTotal]
    top_lectures: list[LectureCost]
    top_students: list[StudentCost]
    latest: list[CostRecord]
    cloud: CloudEquivalent

    @property
    def stage_series(self) -> dict[str, list[Decimal]]:
        """One series per stage across the days: what a stacked bar chart takes."""
        return {s: [d.by_stage[s] for d in self.days] for s in self.stages}


def build_dashboard(
    ledger: Ledger, catalog: Catalog, creator_id: str, filters: DashboardFilters,
    now: datetime | None = None,
) -> Dashboard:
    """The creator's dashboard for the filtered period, from one read of the ledger."""
    now = now or datetime.now(UTC)
    since, until = filters.period(now.astimezone(UTC).date())
    filters = replace(filters, since=since, until=until)
    where, params = _where(catalog, creator_id, filters)
    start, end = _instant(since), _instant(until + timedelta(days=1))
    month_from = month_start(now)
    kept = month_spent(ledger, creator_id, now)
    with ledger.connect() as connection:
        try:
            # The one read of the ledger: the period's rows (and this month's, unless the
            # ledger keeps month-to-date totals), nothing else.
            if kept is None:
                connection.execute(
                    "CREATE TEMP TABLE scoped AS SELECT * FROM cost_records WHERE creator_id = ? "
                    "AND ((occurred_at >= ? AND occurred_at < ?) "
                    "OR (occurred_at >= ? AND occurred_at <= ?))",
                    [creator_id, start, end, month_from, now],
                )
            else:
                connection.execute(
                    "CREATE TEMP TABLE scoped AS SELECT * FROM cost_records WHERE creator_id = ? "
                    "AND occurred_at >= ? AND occurred_at < ?", [creator_id, start, end])
            connection.execute(
                f"CREATE TEMP TABLE filtered AS SELECT * FROM scoped WHERE {where}", params)
            month = _month_to_date(connection, catalog, creator_id, now, kept)
            days = _days(connection, since, until)
            total, count = connection.execute(
                "SELECT coalesce(sum(cost_usd), 0), count(*) FROM filtered").fetchall()[0]
            by_model = _by_model(connection)
            lectures = _top_lectures(connection, catalog, creator_id)
            students = _top_students(connection)
            latest = _latest(connection)
            cloud = _cloud_equivalent(connection, ledger)
        except duckdb.Error as exc:
            raise ValidationError(f"the dashboard query failed: {exc}") from exc
    return Dashboard(
        creator_id=creator_id, filters=filters, generated_at=now, month=month,
        stages=STAGES, days=days, period_total_usd=Decimal(total), period_records=int(count),
        by_model=by_model, top_lectures=lectures, top_students=students, latest=latest,
        cloud=cloud,
    )


def export_records(
    ledger: Ledger, catalog: Catalog, creator_id: str, filters: DashboardFilters,
    fmt: ExportFormat,
) -> Iterator[bytes]:
    """Every column of the creator's filtered records, oldest first, as CSV or Parquet bytes.

    Filters apply as given: no ``since``/``until`` means from the first record to the last
    (pass ``Dashboard.filters`` to export exactly what the dashboard shows). CSV money is the
    exact decimal (12 places), never a float.
    """
    if fmt not in ("csv", "parquet"):
        raise ValidationError(f"unknown export format {fmt!r}; use csv or parquet")
    where, params = _where(catalog, creator_id, filters)
    columns = ", ".join(SCHEMA.names)
    with ledger.connect() as connection:
        try:
            table = connection.sql(
                f"SELECT {columns} FROM cost_records WHERE {where} "
                "ORDER BY occurred_at, record_id", params=params,
            ).to_arrow_table()
        except duckdb.Error as exc:
            raise ValidationError(f"the export query failed: {exc}") from exc
    table = table.cast(SCHEMA)
    if fmt == "parquet":
        return _parquet_bytes(table)
    return _csv_chunks(table)


def _instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _where(catalog: Catalog, creator_id: str, filters: DashboardFilters) -> tuple[str, list[Any]]:
    """The SQL condition (with its parameters) for a creator's filtered records."""
    clauses = ["creator_id = ?"]
    params: list[Any] = [creator_id]
    if filters.since is not None:
        clauses.append("occurred_at >= ?")
        params.append(_instant(filters.since))
    if filters.until is not None:
        clauses.append("occurred_at < ?")
        params.append(_instant(filters.until + timedelta(days=1)))
    if filters.video_id is not None:
        clauses.append("video_id = ?")
        params.append(filters.video_id)
    if filters.course_id is not None:
        catalog.get_course(creator_id, filters.course_id)  # NotFoundError for anyone else's
        # A course's costs: its lectures' processing and its chat sessions' questions.
        video_ids = [v.id for v in catalog.list_videos(creator_id, filters.course_id,
                                                            include_unlisted=True)]
        session_ids = catalog.chat_session_ids(creator_id, filters.course_id)
        clauses.append("(coalesce(list_contains(?::VARCHAR[], video_id), false) "
                       "OR coalesce(list_contains(?::VARCHAR[], chat_session_id), false))")
        params += [video_ids, session_ids]
    return " AND ".join(clauses), params


def _month_to_date(
    connection: duckdb.DuckDBPyConnection, catalog: Catalog, creator_id: str, now: datetime,
    kept: Decimal | None,
) -> MonthToDate:
    start = month_start(now)
    month = start.strftime("%Y-%m")
    if kept is None:
        (summed,) = connection.execute(
            "SELECT coalesce(sum(cost_usd), 0) FROM scoped "
            "WHERE occurred_at >= ? AND occurred_at <= ?", [start, now]).fetchall()[0]
        kept = Decimal(summed)
    spent = kept
    projection = project_month_end(spent, now)
    budget = catalog.get_budget(creator_id)
    marks = []
    percent = None
    if budget is not None:
        percent = (spent * 100 / budget.monthly_usd).quantize(Decimal("0.1"))
        marks = [BudgetMark(t, budget.monthly_usd * t / 100, spent * 100 >= budget.monthly_usd * t)
                 for t in THRESHOLDS]
    return MonthToDate(
        month=month, spent_usd=spent, projected_usd=projection.projected_usd.quantize(QUANTUM),
        days_elapsed=projection.days_elapsed, days_in_month=projection.days_in_month,
        monthly_usd=budget.monthly_usd if budget else None,
        hard_limit_usd=budget.hard_limit_usd if budget else None,
        percent=percent, marks=marks,
        alerts=[a for a in catalog.budget_alerts(creator_id) if a.month == month],
        reserved_usd=from_pusd(SpendReservations(catalog.engine).standing(
            creator_id, month, datetime.now(UTC)).held_pusd) if budget is not None else Decimal(0),
    )


def _days(connection: duckdb.DuckDBPyConnection, since: date, until: date) -> list[DayCost]:
    rows = connection.execute(
        "SELECT CAST(occurred_at AS DATE), stage, sum(cost_usd) FROM filtered GROUP BY ALL"
    ).fetchall()
    costs = {(day, stage): Decimal(cost) for day, stage, cost in rows}
    out = []
    for offset in range((until - since).days + 1):
        day = since + timedelta(days=offset)
        by_stage = {stage: costs.get((day, stage), Decimal(0)) for stage in STAGES}
        out.append(DayCost(day, by_stage, sum(by_stage.values(), Decimal(0))))
    return out


def _by_model(connection: duckdb.DuckDBPyConnection) -> list[ModelTotal]:
    rows = connection.execute(
        "SELECT provider, model, unit, sum(quantity), sum(cost_usd) FROM filtered "
        "GROUP BY ALL ORDER BY provider, model, unit"
    ).fetchall()
    units: dict[tuple[str, str], list[UnitTotal]] = {}
    for provider, model, unit, quantity, cost in rows:
        units.setdefault((provider, model), []).append(
            UnitTotal(unit, float(quantity), Decimal(cost)))
    totals = [ModelTotal(p, m, sum((u.cost_usd for u in us), Decimal(0)), us)
              for (p, m), us in units.items()]
    return sorted(totals, key=lambda t: (-t.cost_usd, t.provider, t.model))


def _top_lectures(
    connection: duckdb.DuckDBPyConnection, catalog: Catalog, creator_id: str,
) -> list[LectureCost]:
    rows = connection.execute(
        "SELECT video_id, sum(cost_usd) AS cost, count(*) FROM filtered "
        "WHERE video_id IS NOT NULL GROUP BY video_id ORDER BY cost DESC, video_id LIMIT ?",
        [TOP],
    ).fetchall()
    out = []
    for video_id, cost, records in rows:
        title, deleted = _lecture_title(catalog, creator_id, video_id)
        out.append(LectureCost(video_id, title, deleted, Decimal(cost), int(records)))
    return out


def _lecture_title(catalog: Catalog, creator_id: str, video_id: str) -> tuple[str, bool]:
    """A lecture's title, also for one deleted since its costs were recorded."""
    try:
        video = catalog.find_video(video_id)
    except (NotFoundError, ValidationError):
        return f"(deleted lecture {video_id})", True
    if video.creator_id != creator_id:  # never another creator's title
        return f"(deleted lecture {video_id})", True
    # A deleted lecture may keep its catalog row (and title) so its costs stay readable.
    if video.status.value == "deleted":
        return f"{video.title} (deleted)", True
    return video.title, False


def _top_students(connection: duckdb.DuckDBPyConnection) -> list[StudentCost]:
    rows = connection.execute(
        "SELECT student_id, sum(cost_usd) AS cost, count(DISTINCT message_id) FROM filtered "
        "WHERE student_id IS NOT NULL GROUP BY student_id ORDER BY cost DESC, student_id "
        "LIMIT ?", [TOP],
    ).fetchall()
    return [StudentCost(s, Decimal(c), int(q)) for s, c, q in rows]


def _latest(connection: duckdb.DuckDBPyConnection) -> list[CostRecord]:
    names = SCHEMA.names
    rows = connection.execute(
        f"SELECT {', '.join(names)} FROM filtered "
        "ORDER BY occurred_at DESC, record_id DESC LIMIT ?", [LATEST],
    ).fetchall()
    return [CostRecord(**dict(zip(names, row, strict=True))) for row in rows]


def _cloud_equivalent(connection: duckdb.DuckDBPyConnection, ledger: Ledger) -> CloudEquivalent:
    rows = connection.execute(
        "SELECT stage, provider, model, unit, CAST(occurred_at AS DATE) AS day, sum(quantity) "
        "FROM filtered WHERE list_contains(?::VARCHAR[], provider) "
        "AND list_contains(?::VARCHAR[], stage) AND list_contains(?::VARCHAR[], unit) "
        "GROUP BY ALL ORDER BY ALL",
        [list(LOCAL_PROVIDERS), list(CLOUD_MODELS), list(UNIT_CONVERSIONS)],
    ).fetchall()
    lines: dict[tuple[str, str, str, str], tuple[float, Decimal, Decimal]] = {}
    for stage, provider, model, unit, day, quantity in rows:
        cloud_provider, cloud_model = CLOUD_MODELS[stage]
        cloud_unit, per_local = UNIT_CONVERSIONS[unit]
        cloud_quantity = Decimal(quantity) * per_local
        # Priced by the table in force on the day the usage happened.
        price = ledger.prices.price(cloud_provider, cloud_model, cloud_unit, day)
        key = (stage, provider, model, unit)
        local_sum, quantity_sum, usd_sum = lines.get(key, (0.0, Decimal(0), Decimal(0)))
        lines[key] = (local_sum + float(quantity), quantity_sum + cloud_quantity,
                      usd_sum + cloud_quantity * price.usd_per_unit)
    out = []
    for (stage, provider, model, unit), (local, cloud_quantity, usd) in lines.items():
        cloud_provider, cloud_model = CLOUD_MODELS[stage]
        out.append(CloudLine(stage, provider, model, unit, local, cloud_provider, cloud_model,
                             UNIT_CONVERSIONS[unit][0], cloud_quantity, usd.quantize(QUANTUM)))
    total = sum((line.cloud_usd for line in out), Decimal(0))
    estimated = any(line.local_unit.endswith("_token") for line in out)
    return CloudEquivalent(out, total, estimated)


def _parquet_bytes(table: pa.Table) -> Iterator[bytes]:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    yield buffer.getvalue()


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # str() would write 1.2E-7 for small amounts
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _csv_chunks(table: pa.Table, rows_per_chunk: int = 2000) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    for batch in table.to_batches(max_chunksize=rows_per_chunk):
        for row in batch.to_pylist():
            writer.writerow([_csv_text(row[name]) for name in table.column_names])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
