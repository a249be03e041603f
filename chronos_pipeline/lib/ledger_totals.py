"""Month-to-date spend per creator and per student, kept in the catalog in step with the ledger.

Budget checks run before every paid call (every student question too), so they must not
read the ledger's files. Each append counts its call here, in the same locked step as the
file is written (``Ledger.append``)::

    ledger_calls   one row per provider call counted (call_id primary key: never twice)
    ledger_totals  (creator_id, month, student_id) → pico-dollars, records, calls;
                   student_id '' is the creator's whole spend, a student's id their share

Counting a call inserts its ``ledger_calls`` row and adds to its totals in one transaction,
and only if the insert happened, so a call is counted at most once however often it is
applied. The Parquet file is durable before that transaction, so a crash in between leaves
the totals short by that call, never long: ``reconcile`` (run with every compaction) counts
every call on the ledger that ``ledger_calls`` lacks. ``check`` compares the totals with a
SUM over the ledger; ``rebuild`` (``chronos costs rebuild-totals``) recounts everything from
the ledger while holding the ledger's lock exclusive, so no append is half done meanwhile.
A catalog that has never been filled (just migrated) is filled on its first read.

Money is whole pico-dollars in a BIGINT (the ledger's 12 decimal places): exact and
summable on SQLite and PostgreSQL alike, up to $9.2 million per creator and month.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.catalog_models import (
    LedgerCallRow,
    LedgerTotalRow,
    LedgerTotalsStateRow,
)
from chronos_pipeline.lib.errors import ConfigurationError
from chronos_pipeline.lib.ledger import QUANTUM, CostRecord, Ledger, month_of

log = logging.getLogger(__name__)

CALLS: Table = LedgerCallRow.__table__  # type: ignore[assignment]
TOTALS: Table = LedgerTotalRow.__table__  # type: ignore[assignment]
STATE: Table = LedgerTotalsStateRow.__table__  # type: ignore[assignment]
CREATOR_WIDE = ""
SEEDED = "seeded"
BATCH = 2000


def to_pusd(amount: Decimal) -> int:
    return int(amount.quantize(QUANTUM).scaleb(12))


def from_pusd(amount: int) -> Decimal:
    return (Decimal(amount) * QUANTUM).normalize() if amount else Decimal(0)


@dataclass(frozen=True)
class Call:
    """One provider call's contribution to the totals."""

    call_id: str
    creator_id: str
    student_id: str | None
    month: str
    cost_pusd: int
    records: int


@dataclass(frozen=True)
class Drift:
    creator_id: str
    month: str
    student_id: str  # '' for the creator's whole spend
    kept_usd: Decimal
    ledger_usd: Decimal


def calls_of(records: Iterable[CostRecord]) -> list[Call]:
    """Group records by provider call (a record without a call id is a call of its own)."""
    grouped: dict[str, list[CostRecord]] = {}
    for record in records:
        grouped.setdefault(record.call_id or record.record_id, []).append(record)
    return [
        Call(call_id, rs[0].creator_id, rs[0].student_id, month_of(rs[0].occurred_at),
             sum(to_pusd(r.cost_usd) for r in rs), len(rs))
        for call_id, rs in grouped.items()
    ]


def _dialect_insert(connection: Connection, table: Table) -> Any:
    name = connection.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise ConfigurationError(f"the ledger totals need SQLite or PostgreSQL, not {name}")


def _count(connection: Connection, calls: Sequence[Call], now: datetime) -> int:
    """Count each call not yet counted; returns how many were new."""
    added = 0
    for call in calls:
        inserted = connection.execute(
            _dialect_insert(connection, CALLS).values(
                call_id=call.call_id, creator_id=call.creator_id, student_id=call.student_id,
                month=call.month, cost_pusd=call.cost_pusd, records=call.records,
                applied_at=now,
            ).on_conflict_do_nothing(index_elements=["call_id"])
        )
        if inserted.rowcount != 1:
            continue
        added += 1
        for student in (CREATOR_WIDE, call.student_id) if call.student_id else (CREATOR_WIDE,):
            upsert = _dialect_insert(connection, TOTALS).values(
                creator_id=call.creator_id, month=call.month, student_id=student,
                cost_pusd=call.cost_pusd, records=call.records, calls=1)
            connection.execute(upsert.on_conflict_do_update(
                index_elements=["creator_id", "month", "student_id"],
                set_={"cost_pusd": TOTALS.c.cost_pusd + upsert.excluded.cost_pusd,
                      "records": TOTALS.c.records + upsert.excluded.records,
                      "calls": TOTALS.c.calls + 1},
            ))
    return added


class LedgerTotals:
    """The maintained totals of one catalog (give it to ``Ledger(totals=...)``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._seeded = False

    # writing ----------------------------------------------------------------------------
    def apply(self, records: Sequence[CostRecord]) -> None:
        """Count an appended call. The records are already on the ledger, so a database that
        fails now only delays the count until the next reconcile: the call is not refused."""
        try:
            with self.catalog.engine.begin() as connection:
                _count(connection, calls_of(records), datetime.now(UTC))
        except SQLAlchemyError:
            log.warning("could not count %d cost record(s) into the month-to-date totals; "
                        "the next reconcile will", len(records), exc_info=True)

    # reading ----------------------------------------------------------------------------
    def spent(self, ledger: Ledger, creator_id: str, month: str,
              student_id: str | None = None) -> Decimal:
        """A creator's (or one student's) spend in ``month`` (``YYYY-MM``): one key lookup."""
        self.ensure_seeded(ledger)
        with self.catalog.engine.connect() as connection:
            value = connection.execute(
                select(TOTALS.c.cost_pusd).where(
                    TOTALS.c.creator_id == creator_id, TOTALS.c.month == month,
                    TOTALS.c.student_id == (student_id or CREATOR_WIDE))
            ).scalar()
        return from_pusd(int(value or 0))

    def ensure_seeded(self, ledger: Ledger) -> None:
        """Fill the totals from the ledger once, the first time a catalog is used with them."""
        if self._seeded:
            return
        with self.catalog.engine.connect() as connection:
            seeded = connection.execute(
                select(STATE.c.name).where(STATE.c.name == SEEDED)).first() is not None
        if not seeded:
            self.reconcile(ledger)
            self._mark_seeded()
        self._seeded = True

    def _mark_seeded(self) -> None:
        with self.catalog.engine.begin() as connection:
            connection.execute(
                _dialect_insert(connection, STATE).values(name=SEEDED, at=datetime.now(UTC))
                .on_conflict_do_update(index_elements=["name"], set_={"at": datetime.now(UTC)}))

    # keeping in step --------------------------------------------------------------------
    def reconcile(self, ledger: Ledger, since: datetime | None = None) -> int:
        """Count every call on the ledger (from ``since`` on) that the totals lack; returns
        how many. Safe beside running appends: a call is counted once whoever gets there
        first."""
        on_ledger = self._ledger_calls(ledger, since)
        if not on_ledger:
            return 0
        months = sorted({c.month for c in on_ledger})
        with self.catalog.engine.connect() as connection:
            known = set(connection.execute(
                select(CALLS.c.call_id).where(CALLS.c.month.in_(months))).scalars())
        missing = [c for c in on_ledger if c.call_id not in known]
        added = 0
        now = datetime.now(UTC)
        for start in range(0, len(missing), BATCH):
            with self.catalog.engine.begin() as connection:
                added += _count(connection, missing[start:start + BATCH], now)
        if added:
            log.warning("counted %d call(s) the month-to-date totals had missed", added)
        return added

    def check(self, ledger: Ledger, since: datetime | None = None) -> list[Drift]:
        """Where the kept totals differ from a SUM over the ledger (empty when in step).

        An append that is between its file and its count shows as a transient difference.
        """
        where, params = ("WHERE occurred_at >= ?", [since]) if since else ("", [])
        _, rows = ledger.query(
            f"""
            WITH r AS (SELECT creator_id, strftime(occurred_at, '%Y-%m') AS month,
                              student_id, cost_usd FROM cost_records {where})
            SELECT creator_id, month, '' AS student_id, sum(cost_usd) FROM r GROUP BY ALL
            UNION ALL
            SELECT creator_id, month, student_id, sum(cost_usd) FROM r
            WHERE student_id IS NOT NULL GROUP BY ALL
            """, params)
        on_ledger = {(c, m, s): Decimal(v) for c, m, s, v in rows}
        query = select(TOTALS.c.creator_id, TOTALS.c.month, TOTALS.c.student_id,
                       TOTALS.c.cost_pusd)
        if since is not None:
            query = query.where(TOTALS.c.month >= month_of(since))
        with self.catalog.engine.connect() as connection:
            kept = {(c, m, s): from_pusd(int(v)) for c, m, s, v in connection.execute(query)}
        drifts = []
        for key in sorted(set(on_ledger) | set(kept)):
            mine, theirs = kept.get(key, Decimal(0)), on_ledger.get(key, Decimal(0))
            if mine != theirs:
                drifts.append(Drift(*key, kept_usd=mine, ledger_usd=theirs))
        return drifts

    def rebuild(self, ledger: Ledger) -> tuple[int, int]:
        """Recount every total from the ledger; returns (calls, total rows).

        Appends wait meanwhile (the ledger lock is held exclusive), so the recount and the
        ledger agree exactly when it returns.
        """
        with ledger.exclusively():
            calls = self._ledger_calls(ledger, None)
            now = datetime.now(UTC)
            with self.catalog.engine.begin() as connection:
                connection.execute(delete(TOTALS))
                connection.execute(delete(CALLS))
                for start in range(0, len(calls), BATCH):
                    connection.execute(insert(CALLS), [
                        {"call_id": c.call_id, "creator_id": c.creator_id,
                         "student_id": c.student_id, "month": c.month,
                         "cost_pusd": c.cost_pusd, "records": c.records, "applied_at": now}
                        for c in calls[start:start + BATCH]])
                totals: dict[tuple[str, str, str], list[int]] = {}
                for c in calls:
                    for student in ((CREATOR_WIDE, c.student_id) if c.student_id
                                    else (CREATOR_WIDE,)):
                        kept = totals.setdefault((c.creator_id, c.month, student), [0, 0, 0])
                        kept[0] += c.cost_pusd
                        kept[1] += c.records
                        kept[2] += 1
                rows = [{"creator_id": k[0], "month": k[1], "student_id": k[2],
                         "cost_pusd": v[0], "records": v[1], "calls": v[2]}
                        for k, v in totals.items()]
                for start in range(0, len(rows), BATCH):
                    connection.execute(insert(TOTALS), rows[start:start + BATCH])
        self._mark_seeded()
        self._seeded = True
        return len(calls), len(rows)

    @staticmethod
    def _ledger_calls(ledger: Ledger, since: datetime | None) -> list[Call]:
        where, params = ("WHERE occurred_at >= ?", [since]) if since else ("", [])
        _, rows = ledger.query(
            f"""
            SELECT coalesce(call_id, record_id), creator_id, any_value(student_id),
                   strftime(occurred_at, '%Y-%m') AS month, sum(cost_usd), count(*)
            FROM cost_records {where} GROUP BY ALL
            """, params)
        return [Call(call, creator, student, month, to_pusd(Decimal(cost)), int(n))
                for call, creator, student, month, cost, n in rows]


def month_spent(ledger: Ledger, creator_id: str, now: datetime,
                student_id: str | None = None) -> Decimal | None:
    """The maintained month-to-date spend as of ``now``'s month, or None for a ledger that
    keeps no totals (then the caller sums the ledger)."""
    if not isinstance(ledger.totals, LedgerTotals):
        return None
    return ledger.totals.spent(ledger, creator_id, month_of(now), student_id)
