"""Spend held for paid steps in flight, so a hard limit holds before the money is spent.

A paid step (transcription, embedding, a question) first *holds* its expected cost — an
upper bound of what its provider calls can bill — and refuses to start when

    spent this month (ledger_totals) + held by steps in flight + this step  >  hard limit

(and likewise against a student's monthly cap). The check and the hold are one atomic
step per creator, so two processes cannot both pass on the same headroom:

- SQLite: the hold is a single ``INSERT … SELECT … WHERE <sums fit>``, the first statement
  of its transaction. A write statement takes the database's write lock before it reads, so
  its sums see every committed hold and no other writer runs until it commits.
- PostgreSQL: a transaction-scoped advisory lock per creator
  (``pg_advisory_xact_lock``) serializes holders; the same ``INSERT … SELECT`` then reads
  the holds committed before it (READ COMMITTED takes a snapshot per statement).

When the step ends its holds are deleted (settled): its real records are on the ledger by
then, written as each call returned, so the real spend stays and the rest is released. The
ledger's totals move before a hold is deleted, so a reader may count a call twice for a
moment, never zero times. A step that crashes never settles: its hold lapses at
``expires_at``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from chronos_pipeline.lib.catalog_models import LedgerTotalRow, SpendReservationRow
from chronos_pipeline.lib.errors import StorageBusy

HOLDS: Table = SpendReservationRow.__table__  # type: ignore[assignment]
TOTALS: Table = LedgerTotalRow.__table__  # type: ignore[assignment]
CREATOR_WIDE = ""  # ledger_totals' student_id for a creator's whole spend


@dataclass(frozen=True)
class Hold:
    """What one hold asks for: ``amount_pusd`` against the limits that apply (None: none)."""

    creator_id: str
    month: str
    amount_pusd: int
    stage: str
    expires_at: datetime
    creator_limit_pusd: int | None
    student_id: str | None = None
    student_cap_pusd: int | None = None
    ref: str | None = None
    # Spent this month as read from the ledger, for a ledger that keeps no totals in the
    # catalog (then the spent part of the check is not atomic with the ledger's appends).
    spent_pusd: int | None = None
    student_spent_pusd: int | None = None


@dataclass(frozen=True)
class Standing:
    """Spent and held this month, for the creator and (if any) one student."""

    spent_pusd: int
    held_pusd: int
    student_spent_pusd: int = 0
    student_held_pusd: int = 0


def _spent(creator_id: str, month: str, student_id: str | None) -> Any:
    return select(func.coalesce(func.sum(TOTALS.c.cost_pusd), 0)).where(
        TOTALS.c.creator_id == creator_id, TOTALS.c.month == month,
        TOTALS.c.student_id == (student_id or CREATOR_WIDE)).scalar_subquery()


def _held(creator_id: str, month: str, now: datetime, student_id: str | None) -> Any:
    conditions = [HOLDS.c.creator_id == creator_id, HOLDS.c.month == month,
                  HOLDS.c.expires_at > now]
    if student_id is not None:
        conditions.append(HOLDS.c.student_id == student_id)
    return select(func.coalesce(func.sum(HOLDS.c.amount_pusd), 0)).where(
        *conditions).scalar_subquery()


class SpendReservations:
    """The holds of one catalog database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def hold(self, request: Hold, now: datetime) -> str | None:
        """Hold ``request.amount_pusd`` if spent + held + it fits every limit; returns the
        hold's id, or None (refused, nothing held)."""
        hold_id = secrets.token_hex(12)
        amount = literal(request.amount_pusd, BigInteger())
        fits: list[ColumnElement[bool]] = []
        if request.creator_limit_pusd is not None:
            fits.append(self._used(request, None, now) + amount <= request.creator_limit_pusd)
        if request.student_id is not None and request.student_cap_pusd is not None:
            fits.append(self._used(request, request.student_id, now) + amount
                        <= request.student_cap_pusd)
        row = select(
            literal(hold_id, String()), literal(request.creator_id, String()),
            literal(request.student_id, String()), literal(request.month, String()),
            amount, literal(request.stage, String()), literal(request.ref, String()),
            literal(now, DateTime(timezone=True)),
            literal(request.expires_at, DateTime(timezone=True)),
        )
        if fits:
            row = row.where(and_(*fits))
        statement = insert(HOLDS).from_select(
            ["id", "creator_id", "student_id", "month", "amount_pusd", "stage", "ref",
             "created_at", "expires_at"], row)
        try:
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                        {"k": f"chronos-spend:{request.creator_id}"})
                # The first statement writes (SQLite's write lock is taken before the sums).
                connection.execute(delete(HOLDS).where(HOLDS.c.creator_id == request.creator_id,
                                                       HOLDS.c.expires_at <= now))
                inserted = connection.execute(statement).rowcount
        except OperationalError as exc:
            if "locked" in str(exc):
                raise StorageBusy("the catalog database is busy; try again") from exc
            raise
        return hold_id if inserted == 1 else None

    @staticmethod
    def _used(request: Hold, student_id: str | None, now: datetime) -> Any:
        """Spent + held this month (by the student, or the whole creator), as SQL."""
        given = request.spent_pusd if student_id is None else request.student_spent_pusd
        spent = (_spent(request.creator_id, request.month, student_id) if given is None
                 else literal(given, BigInteger()))
        return spent + _held(request.creator_id, request.month, now, student_id)

    def release(self, hold_ids: list[str]) -> None:
        if not hold_ids:
            return
        with self.engine.begin() as connection:
            connection.execute(delete(HOLDS).where(HOLDS.c.id.in_(hold_ids)))

    def standing(self, creator_id: str, month: str, now: datetime,
                 student_id: str | None = None) -> Standing:
        """Spent (from the kept totals) and held this month, read in one statement."""
        columns = [_spent(creator_id, month, None), _held(creator_id, month, now, None)]
        if student_id is not None:
            columns += [_spent(creator_id, month, student_id),
                        _held(creator_id, month, now, student_id)]
        with self.engine.connect() as connection:
            values = [int(v) for v in connection.execute(select(*columns)).one()]
        return Standing(*values)
