"""The library as a change feed: every listed lecture's state and spend, and a cheap version.

An SSE loop polls ``library_version`` every second and builds a ``library_snapshot`` (and
sends it) only when the version moved. The version hashes the catalog's (id, course,
position, updated_at) of the listed lectures (every status change, progress write, rename,
move and deletion bumps one of them) and, when costs are shown, the newest ledger file's
name; it reads no ledger file. Students see the lectures of their courses without costs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.ledger import Ledger


@dataclass(frozen=True)
class LectureState:
    id: str
    title: str
    course_id: str | None
    position: int | None
    status: str
    progress: float | None
    eta_s: float | None
    error_message: str | None
    updated_at: datetime
    cost_usd: Decimal | None  # None when costs are not shown (students)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "course_id": self.course_id,
            "position": self.position, "status": self.status, "progress": self.progress,
            "eta_s": self.eta_s, "error_message": self.error_message,
            "updated_at": self.updated_at.isoformat(),
            **({"cost_usd": str(self.cost_usd)} if self.cost_usd is not None else {}),
        }


@dataclass(frozen=True)
class LibrarySnapshot:
    version: str
    lectures: list[LectureState]
    # The ledger's newest file when the costs were summed (reused while it stays the same).
    ledger_mark: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "lectures": [x.to_json() for x in self.lectures]}


def ledger_mark(ledger: Ledger) -> str:
    """Changes whenever a record lands (or a compaction swaps the ledger's files)."""
    return ledger.version()


def library_version(catalog: Catalog, ledger: Ledger, creator_id: str, *,
                    course_ids: Collection[str] | None = None,
                    include_costs: bool) -> str:
    """A short string that changes whenever anything in the snapshot may have."""
    rows = catalog.library_rows(creator_id, sorted(course_ids) if course_ids is not None
                                else None)
    digest = hashlib.sha256()
    for video_id, course_id, position, updated_at in rows:
        digest.update(f"{video_id}|{course_id}|{position}|{updated_at.isoformat()}\n".encode())
    if include_costs:
        digest.update(ledger_mark(ledger).encode())
    return digest.hexdigest()[:16]


def video_costs(ledger: Ledger, creator_id: str) -> dict[str, Decimal]:
    """What each of the creator's videos has cost so far (USD), in one query."""
    _columns, rows = ledger.query(
        "SELECT video_id, sum(cost_usd) FROM cost_records "
        "WHERE creator_id = ? AND video_id IS NOT NULL GROUP BY video_id",
        [creator_id],
    )
    return {str(video_id): Decimal(total) for video_id, total in rows}


def library_snapshot(catalog: Catalog, ledger: Ledger, creator_id: str, *,
                     include_costs: bool, course_ids: Collection[str] | None = None,
                     previous: LibrarySnapshot | None = None) -> LibrarySnapshot:
    """Every listed lecture of the creator (or of ``course_ids``: a student's courses).

    ``include_costs=False`` for students. ``previous``: the last snapshot sent; its costs
    are reused when no ledger file was written since, so a progress tick costs no ledger
    scan.
    """
    version = library_version(catalog, ledger, creator_id, course_ids=course_ids,
                              include_costs=include_costs)
    videos = catalog.list_videos(
        creator_id, course_ids=sorted(course_ids) if course_ids is not None else None)
    mark = ledger_mark(ledger) if include_costs else ""
    costs: dict[str, Decimal] = {}
    if include_costs:
        if previous is not None and previous.ledger_mark == mark and mark:
            costs = {x.id: x.cost_usd for x in previous.lectures if x.cost_usd is not None}
        else:
            costs = video_costs(ledger, creator_id)
    lectures = [
        LectureState(
            id=v.id, title=v.title, course_id=v.course_id, position=v.position,
            status=v.status.value, progress=v.progress, eta_s=v.progress_eta_s,
            error_message=v.error_message, updated_at=v.updated_at,
            cost_usd=costs.get(v.id, Decimal(0)) if include_costs else None,
        )
        for v in videos
    ]
    return LibrarySnapshot(version, lectures, mark)
