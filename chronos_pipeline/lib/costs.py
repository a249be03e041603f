"""Cost reports over the ledger, all read through DuckDB's ``cost_records`` view, and the
re-embedding estimates kept beside it."""

from __future__ import annotations

import calendar
import os
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from chronos_pipeline.lib.catalog import Catalog, Video, VideoStatus
from chronos_pipeline.lib.chunking import read_chunks
from chronos_pipeline.lib.errors import NotFoundError, PipelineStateError, ValidationError
from chronos_pipeline.lib.ledger import MONEY, QUANTUM, Ledger
from chronos_pipeline.lib.ledger_totals import month_spent
from chronos_pipeline.lib.sentence_vectors import texts_to_embed
from chronos_pipeline.lib.storage import Storage
from chronos_pipeline.lib.token_counts import count_tokens, tokenizer_for


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _table(ledger: Ledger, sql: str, params: list[Any] | None = None) -> Table:
    columns, rows = ledger.query(sql, params)
    return Table(columns, rows)


def report_by_video_and_stage(ledger: Ledger, creator_id: str | None = None) -> Table:
    """Totals per video (or chat), stage, model and unit: what `chronos costs report` prints.

    One row per model: quantities of different models (a local and a cloud embedder's
    tokens, say) are never added together.
    """
    where = "WHERE creator_id = ?" if creator_id else ""
    return _table(
        ledger,
        f"""
        SELECT creator_id,
               coalesce(video_id, '(chat)') AS video_id,
               stage,
               provider,
               model,
               unit,
               sum(quantity) AS quantity,
               sum(cost_usd) AS cost_usd,
               count(*) AS records
        FROM cost_records {where}
        GROUP BY ALL
        ORDER BY creator_id, video_id, stage, provider, model, unit
        """,
        [creator_id] if creator_id else None,
    )


def usage_by(ledger: Ledger, creator_id: str, dimension: str) -> Table:
    """A creator's totals by ``stage``, ``provider`` or ``day``, per unit."""
    column = {"stage": "stage", "provider": "provider",
              "day": "CAST(occurred_at AS DATE)"}[dimension]
    return _table(
        ledger,
        f"""
        SELECT {column} AS {dimension}, unit, sum(quantity) AS quantity,
               sum(cost_usd) AS cost_usd
        FROM cost_records WHERE creator_id = ?
        GROUP BY ALL ORDER BY 1, 2
        """,
        [creator_id],
    )


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spent(
    ledger: Ledger, creator_id: str, since: datetime | None = None,
    until: datetime | None = None,
) -> Decimal:
    """A creator's exact spend, optionally between two instants."""
    sql = "SELECT coalesce(sum(cost_usd), 0) FROM cost_records WHERE creator_id = ?"
    params: list[Any] = [creator_id]
    if since is not None:
        sql += " AND occurred_at >= ?"
        params.append(since)
    if until is not None:
        sql += " AND occurred_at <= ?"
        params.append(until)
    _, rows = ledger.query(sql, params)
    return Decimal(rows[0][0])


@dataclass(frozen=True)
class MonthToDate:
    month: str
    spent_usd: Decimal
    projected_usd: Decimal
    days_elapsed: float
    days_in_month: int


def month_to_date(ledger: Ledger, creator_id: str, now: datetime | None = None) -> MonthToDate:
    """Spend this calendar month and a straight-line projection to its end."""
    now = now or datetime.now(UTC)
    start = month_start(now)
    so_far = month_spent(ledger, creator_id, now)
    if so_far is None:
        so_far = spent(ledger, creator_id, since=start, until=now)
    projection = project_month_end(so_far, now)
    return MonthToDate(
        month=start.strftime("%Y-%m"),
        spent_usd=so_far,
        projected_usd=projection.projected_usd.quantize(Decimal("0.000001")),
        days_elapsed=round(projection.days_elapsed, 2),
        days_in_month=projection.days_in_month,
    )


@dataclass(frozen=True)
class Projection:
    projected_usd: Decimal
    days_elapsed: float
    days_in_month: int


def project_month_end(so_far: Decimal, now: datetime) -> Projection:
    """Straight-line projection of this month's spend to the month's end."""
    start = month_start(now)
    days = calendar.monthrange(now.year, now.month)[1]
    # At least an hour elapsed, so a first-minute spend does not project to millions.
    elapsed_days = max((now - start).total_seconds() / 86400, 1 / 24)
    return Projection(so_far * Decimal(days) / Decimal(repr(elapsed_days)), elapsed_days, days)


@dataclass(frozen=True)
class Repriced:
    stage: str
    provider: str
    model: str
    unit: str
    quantity: float
    recorded_usd: Decimal
    repriced_usd: Decimal
    price_table_version: str


def recompute(ledger: Ledger, as_of: date, creator_id: str | None = None) -> list[Repriced]:
    """What the ledger would cost under the price table in force on ``as_of``.

    Nothing is rewritten: the records keep the price they were written with.
    """
    where = "WHERE creator_id = ?" if creator_id else ""
    _, rows = ledger.query(
        f"SELECT stage, provider, model, unit, sum(quantity), sum(cost_usd) "
        f"FROM cost_records {where} GROUP BY ALL ORDER BY ALL",
        [creator_id] if creator_id else None,
    )
    out = []
    for stage, provider, model, unit, quantity, recorded in rows:
        price = ledger.prices.price(provider, model, unit, as_of)
        repriced = (Decimal(quantity) * price.usd_per_unit).quantize(QUANTUM)
        out.append(Repriced(stage, provider, model, unit, float(quantity), Decimal(recorded),
                            repriced, price.version))
    return out


# Re-embedding estimates ---------------------------------------------------------------------
#
# An estimate counts, for every ready video of its scope, the very texts the embeddings step
# would send (``sentence_vectors.texts_to_embed`` over the chunks on disk) with the target
# model's own tokenizer (``token_counts``), and prices them with the price table. It is kept
# as one Parquet file under ``ledger_estimates/``; each run that carries it out is attached
# to it (``attach_run``: one small file per run under ``ledger_estimates/runs/``, so runs of
# one backfill attach concurrently without rewriting anything), and ``estimates_against_actual``
# sets each estimate beside the embed records of exactly its runs.
#
# Calibration: a provider may bill other than the tokenizer counts (a per-input overhead, a
# tokenizer revision; the loopback test server bills words + 1 per input). Once a run paired
# with an earlier estimate of the same provider and model has billed some of the videos that
# estimate counted, each new estimate scales its count by billed / counted over those videos
# (the same texts counted and billed; pooled over every such pair on this ledger, since the
# ratio is the provider's, not the creator's). Runs not made from an estimate (ordinary
# ingests) do not calibrate: which texts they sent is not on the ledger. A video embedded
# twice inside one run (a step retry) bills twice and skews the ratio up, on the safe side.

ESTIMATE_VIDEO = pa.struct([
    ("video_id", pa.string()),
    ("texts", pa.int64()),
    ("counted_tokens", pa.int64()),
    ("tokens", pa.float64()),
    ("estimated_usd", MONEY),
])
ESTIMATES_SCHEMA = pa.schema([
    ("estimate_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("kind", pa.string()),
    ("creator_id", pa.string()),
    ("provider", pa.string()),
    ("model", pa.string()),
    ("videos", pa.int64()),
    ("tokens", pa.float64()),
    ("estimated_usd", MONEY),
    ("price_table_version", pa.string()),
    # Since estimates count the texts themselves; NULL in files written before.
    ("course_id", pa.string()),
    ("counted_tokens", pa.int64()),
    ("tokenizer", pa.string()),
    ("calibration", pa.float64()),
    ("calibration_videos", pa.int64()),
    ("with_sentences", pa.bool_()),
    ("per_video", pa.list_(ESTIMATE_VIDEO)),
])
ESTIMATE_RUNS_SCHEMA = pa.schema([
    ("estimate_id", pa.string()),
    ("run_id", pa.string()),
    ("backfill_id", pa.string()),
    ("attached_at", pa.timestamp("us", tz="UTC")),
])
RUNS_DIR = "runs"
# Dagster run and backfill ids, estimate ids: safe in a file name, never a path.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class VideoEstimate:
    video_id: str
    texts: int
    counted_tokens: int
    tokens: float
    estimated_usd: Decimal


@dataclass(frozen=True)
class Estimate:
    estimate_id: str
    provider: str
    model: str
    videos: int
    tokens: float
    estimated_usd: Decimal
    price_table_version: str
    counted_tokens: int
    tokenizer: str
    calibration: float
    calibration_videos: int
    with_sentences: bool
    creator_id: str | None
    course_id: str | None
    per_video: tuple[VideoEstimate, ...]
    # Ready videos whose chunks are not on disk: not counted (their re-embed would fail).
    without_chunks: tuple[str, ...] = ()


def estimate_reembed(
    ledger: Ledger, catalog: Catalog, storage: Storage, model: str, *,
    provider: str | None = None, creator_id: str | None = None, course_id: str | None = None,
    with_sentences: bool = False, run_id: str | None = None, backfill_id: str | None = None,
) -> Estimate:
    """Expected cost of re-embedding every ready video of the scope (one creator, optionally
    one course; every creator when ``creator_id`` is None) with ``model``: the texts the
    embeddings step would send, counted by the model's tokenizer, calibrated by what earlier
    estimated runs billed, priced by the table in force. Kept for comparison with the actual;
    ``run_id``/``backfill_id`` attach the run that carries it out (or ``attach_run`` later)."""
    now = datetime.now(UTC)
    provider = _embedding_provider(ledger, model, provider, now)
    price = ledger.prices.price(provider, model, "input_token", now)
    tokenizer = tokenizer_for(model)
    for name, value in (("run id", run_id), ("backfill id", backfill_id)):
        _check_id(name, value)
    videos = _ready_videos(catalog, creator_id, course_id)
    with _connect(ledger) as connection:
        calibration, calibration_videos = _calibration(connection, provider, model)
    per_video: list[VideoEstimate] = []
    without_chunks: list[str] = []
    for video in videos:
        try:
            chunks = read_chunks(storage, video.creator_id, video.id)
        except PipelineStateError:
            without_chunks.append(video.id)
            continue
        texts = texts_to_embed(chunks, with_sentences)
        counted = count_tokens(model, texts)
        tokens = counted * calibration
        per_video.append(VideoEstimate(video.id, len(texts), counted, tokens,
                                       _usd(tokens, price.usd_per_unit)))
    counted_total = sum(v.counted_tokens for v in per_video)
    tokens_total = counted_total * calibration
    estimate = Estimate(
        estimate_id=secrets.token_hex(8), provider=provider, model=model,
        videos=len(per_video), tokens=tokens_total,
        estimated_usd=_usd(tokens_total, price.usd_per_unit),
        price_table_version=price.version, counted_tokens=counted_total,
        tokenizer=tokenizer.name, calibration=calibration,
        calibration_videos=calibration_videos, with_sentences=with_sentences,
        creator_id=creator_id, course_id=course_id, per_video=tuple(per_video),
        without_chunks=tuple(without_chunks),
    )
    directory = ledger.layout.adopt_legacy_estimates()
    directory.mkdir(parents=True, exist_ok=True)
    row = {
        "estimate_id": estimate.estimate_id, "created_at": now, "kind": "reembed",
        "creator_id": creator_id, "course_id": course_id, "provider": provider, "model": model,
        "videos": estimate.videos, "tokens": tokens_total,
        "estimated_usd": estimate.estimated_usd, "price_table_version": price.version,
        "counted_tokens": counted_total, "tokenizer": tokenizer.name,
        "calibration": calibration, "calibration_videos": calibration_videos,
        "with_sentences": with_sentences,
        "per_video": [asdict(v) for v in per_video],
    }
    _write_atomically(pa.Table.from_pylist([row], schema=ESTIMATES_SCHEMA),
                      directory / f"{estimate.estimate_id}.parquet")
    if run_id is not None:
        attach_run(ledger, estimate.estimate_id, run_id, backfill_id=backfill_id)
    return estimate


def attach_run(
    ledger: Ledger, estimate_id: str, run_id: str, *, backfill_id: str | None = None
) -> None:
    """Record that run ``run_id`` (of backfill ``backfill_id``) carries out the estimate, so
    its embed records are the estimate's actual. Attaching the same run again changes
    nothing; each run of a backfill attaches itself."""
    _check_id("estimate id", estimate_id)
    _check_id("run id", run_id)
    _check_id("backfill id", backfill_id)
    directory = ledger.layout.adopt_legacy_estimates()
    if not (directory / f"{estimate_id}.parquet").is_file():
        raise NotFoundError(f"no re-embedding estimate {estimate_id}")
    runs = directory / RUNS_DIR
    runs.mkdir(parents=True, exist_ok=True)
    _write_atomically(pa.Table.from_pylist([{
        "estimate_id": estimate_id, "run_id": run_id, "backfill_id": backfill_id,
        "attached_at": datetime.now(UTC),
    }], schema=ESTIMATE_RUNS_SCHEMA), runs / f"{estimate_id}-{run_id}.parquet")


def estimates_against_actual(ledger: Ledger) -> Table:
    """Each re-embedding estimate beside the actual of its own runs.

    ``paired_by`` says how: ``run`` (the embed records of the attached runs), ``no run yet``
    (actual empty), or, for estimates made before runs were attached, ``model+time`` (as
    then: every later embed record of that model in the estimate's scope, whichever run
    made it)."""
    with _connect(ledger) as connection:
        return _fetch(connection, """
        WITH linked AS (
            SELECT estimate_id, count(*) AS runs,
                   string_agg(DISTINCT backfill_id, ',' ORDER BY backfill_id) AS backfills
            FROM estimate_runs GROUP BY estimate_id
        ), by_run AS (
            SELECT e.estimate_id,
                   coalesce(sum(c.quantity) FILTER (WHERE c.unit = 'input_token'), 0) AS tokens,
                   coalesce(sum(c.cost_usd), 0) AS usd
            FROM estimates e
            JOIN estimate_runs r ON r.estimate_id = e.estimate_id
            LEFT JOIN cost_records c
              ON c.run_id = r.run_id AND c.stage = 'embed' AND c.model = e.model
             AND c.provider = e.provider
             AND (e.creator_id IS NULL OR c.creator_id = e.creator_id)
            GROUP BY e.estimate_id
        ), by_time AS (
            SELECT e.estimate_id,
                   coalesce(sum(c.quantity) FILTER (WHERE c.unit = 'input_token'), 0) AS tokens,
                   coalesce(sum(c.cost_usd), 0) AS usd
            FROM estimates e
            LEFT JOIN cost_records c
              ON c.stage = 'embed' AND c.model = e.model AND c.provider = e.provider
             AND c.occurred_at >= e.created_at
             AND (e.creator_id IS NULL OR c.creator_id = e.creator_id)
            WHERE e.counted_tokens IS NULL
            GROUP BY e.estimate_id
        ), paired AS (
            SELECT e.*, l.runs, l.backfills,
                   CASE WHEN l.runs IS NOT NULL THEN 'run'
                        WHEN e.counted_tokens IS NULL THEN 'model+time'
                        ELSE 'no run yet' END AS paired_by,
                   CASE WHEN l.runs IS NOT NULL THEN b.tokens ELSE t.tokens END AS actual_tokens,
                   CASE WHEN l.runs IS NOT NULL THEN b.usd ELSE t.usd END AS actual_usd
            FROM estimates e
            LEFT JOIN linked l ON l.estimate_id = e.estimate_id
            LEFT JOIN by_run b ON b.estimate_id = e.estimate_id
            LEFT JOIN by_time t ON t.estimate_id = e.estimate_id
        )
        SELECT estimate_id, created_at, provider, model,
               coalesce(creator_id, '(all)') AS creator_id, course_id, videos, tokenizer,
               calibration, tokens AS estimated_tokens, estimated_usd,
               coalesce(runs, 0) AS runs, backfills, paired_by, actual_tokens, actual_usd,
               CASE WHEN actual_tokens > 0
                    THEN round(100 * (tokens - CAST(actual_tokens AS DOUBLE))
                               / CAST(actual_tokens AS DOUBLE), 2) END AS error_pct
        FROM paired ORDER BY created_at, estimate_id
        """)


def estimate_videos_against_actual(ledger: Ledger, estimate_id: str) -> Table:
    """One estimate, video by video, beside what its runs billed for each video."""
    _check_id("estimate id", estimate_id)
    with _connect(ledger) as connection:
        table = _fetch(connection, """
        WITH counted AS (
            SELECT e.estimate_id, e.provider, e.model, e.creator_id, unnest(e.per_video) AS v
            FROM estimates e WHERE e.estimate_id = ?
        ), billed AS (
            SELECT c.video_id, sum(c.quantity) AS tokens, sum(c.cost_usd) AS usd
            FROM estimate_runs r JOIN cost_records c ON c.run_id = r.run_id
            JOIN (SELECT DISTINCT estimate_id, provider, model, creator_id FROM counted) e
              ON e.estimate_id = r.estimate_id AND c.model = e.model
             AND c.provider = e.provider AND c.stage = 'embed' AND c.unit = 'input_token'
             AND (e.creator_id IS NULL OR c.creator_id = e.creator_id)
            GROUP BY c.video_id
        )
        SELECT v.video_id AS video_id, v.texts AS texts, v.counted_tokens AS counted_tokens,
               v.tokens AS estimated_tokens, v.estimated_usd AS estimated_usd,
               b.tokens AS actual_tokens, b.usd AS actual_usd
        FROM counted LEFT JOIN billed b ON b.video_id = v.video_id
        ORDER BY video_id
        """, [estimate_id])
        if not table.rows:
            found = connection.execute(
                "SELECT count(*) FROM estimates WHERE estimate_id = ?", [estimate_id]).fetchone()
            if found is None or not found[0]:
                raise NotFoundError(f"no re-embedding estimate {estimate_id}")
        return table


def _embedding_provider(ledger: Ledger, model: str, provider: str | None,
                        now: datetime) -> str:
    if provider is not None:
        return provider
    providers = ledger.prices.providers_for(model, "input_token", now)
    if not providers:
        raise ValidationError(f"no price for embedding model {model!r} in the price table")
    if len(providers) > 1:
        raise ValidationError(
            f"several providers price {model!r} ({', '.join(providers)}); name one with "
            "--provider")
    return providers[0]


def _ready_videos(catalog: Catalog, creator_id: str | None,
                  course_id: str | None) -> list[Video]:
    if creator_id is None:
        if course_id is not None:
            raise ValidationError("a course belongs to a creator: name the creator too")
        creators = [c.id for c in catalog.list_creators()]
    else:
        catalog.get_creator(creator_id)
        if course_id is not None:
            catalog.get_course(creator_id, course_id)
        creators = [creator_id]
    return [v for c in creators for v in catalog.list_videos(c, course_id)
            if v.status is VideoStatus.READY]


def _calibration(connection: duckdb.DuckDBPyConnection, provider: str,
                 model: str) -> tuple[float, int]:
    """billed / counted over the videos that runs paired with earlier estimates of this
    provider and model billed, and how many such videos there were (1.0, 0 without any)."""
    row = connection.execute("""
        WITH counted AS (
            SELECT estimate_id, v.video_id AS video_id, v.counted_tokens AS counted
            FROM (SELECT estimate_id, unnest(per_video) AS v FROM estimates
                  WHERE provider = ? AND model = ? AND per_video IS NOT NULL)
        ), billed AS (
            SELECT r.estimate_id, c.video_id, sum(c.quantity) AS billed
            FROM estimate_runs r JOIN cost_records c ON c.run_id = r.run_id
            WHERE c.stage = 'embed' AND c.unit = 'input_token' AND c.provider = ?
              AND c.model = ?
            GROUP BY ALL
        )
        SELECT count(*), coalesce(sum(counted), 0), coalesce(sum(billed), 0)
        FROM counted JOIN billed USING (estimate_id, video_id)
        WHERE counted > 0 AND billed > 0
    """, [provider, model, provider, model]).fetchone()
    videos, counted, billed = (0, 0, 0) if row is None else row
    if not videos or not counted:
        return 1.0, 0
    return float(billed) / float(counted), int(videos)


def _connect(ledger: Ledger) -> duckdb.DuckDBPyConnection:
    """The ledger's connection with ``estimates`` and ``estimate_runs`` views (every column
    of today's schemas; NULL where an older file lacks one)."""
    connection = ledger.connect()
    directory = ledger.layout.adopt_legacy_estimates()
    for view, schema, folder in (("estimates", ESTIMATES_SCHEMA, directory),
                                 ("estimate_runs", ESTIMATE_RUNS_SCHEMA, directory / RUNS_DIR)):
        connection.register(f"_empty_{view}", schema.empty_table())
        source = f"SELECT * FROM _empty_{view}"
        if folder.is_dir() and any(folder.glob("*.parquet")):
            pattern = str(folder / "*.parquet").replace("'", "''")
            source += (f" UNION ALL BY NAME SELECT * FROM read_parquet('{pattern}', "
                       "union_by_name = true)")
        connection.execute(f"CREATE VIEW {view} AS {source}")
    return connection


def _fetch(connection: duckdb.DuckDBPyConnection, sql: str,
           params: list[Any] | None = None) -> Table:
    result = connection.execute(sql, params or [])
    return Table([d[0] for d in result.description or []], result.fetchall())


def _usd(tokens: float, usd_per_token: Decimal) -> Decimal:
    return (Decimal(repr(tokens)) * usd_per_token).quantize(QUANTUM)


def _check_id(name: str, value: str | None) -> None:
    if value is not None and not _ID.match(value):
        raise ValidationError(f"{name} {value!r} is not a valid id")


def _write_atomically(table: pa.Table, path: Path) -> None:
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    pq.write_table(table, temporary)
    os.replace(temporary, path)
