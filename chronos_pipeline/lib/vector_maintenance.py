"""Keeping the chunk tables fast as they grow: scalar indexes and regular optimization.

Every search is filtered to one creator (and maybe courses), every write and delete to one
video; without scalar indexes each of those scans the whole table, so its time follows the
table, not the creator (about 1 s per search at 1 M rows). The indexes below are created
with the table (and on the next write of a table made before them); ``optimize_vectors``
folds the rows written since into them, compacts the fragments each write adds, and prunes
old versions (LanceDB keeps every version for 7 days by default: the disk grows with every
write). ``benchmarks/vectors_scale.py`` measured why there is no vector index: see its
docstring.

``optimize_vectors`` can take tens of seconds: it runs from a Dagster schedule, never on a
request path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
from lancedb.index import Bitmap, BTree

from chronos_pipeline.lib.errors import StorageBusy

TABLE_PREFIX = "chunks__"

# Bitmap for the few-valued tenant columns (a creator's rows are one bitmap), BTree for
# video_id, which has a value per ~100 rows (writes, counts and deletes are per video).
SCALAR_INDEXES: dict[str, type[Bitmap] | type[BTree]] = {
    "creator_id": Bitmap,
    "course_id": Bitmap,
    "video_id": BTree,
}

# Versions younger than this survive a cleanup: a reader or writer that opened the table a
# moment ago still finds its files. Every search opens the latest version, and a write
# takes seconds, so minutes are plenty; older ones only cost disk.
KEEP_VERSIONS = timedelta(minutes=10)


def ensure_scalar_indexes(table: Any) -> list[str]:
    """Create whichever of ``SCALAR_INDEXES`` the table lacks; returns their columns.

    Indexes made by others (a full-text index on ``text``) are left alone."""
    indexed = {column for index in table.list_indices() for column in index.columns}
    missing = [column for column in SCALAR_INDEXES if column not in indexed]
    for column in missing:
        table.create_index(column, config=SCALAR_INDEXES[column]())
    return missing


@dataclass(frozen=True)
class TableReport:
    table: str
    rows: int
    indexes_created: list[str]
    unindexed_rows_before: int
    fragments_before: int
    fragments_after: int
    versions_before: int
    versions_after: int
    bytes_before: int
    bytes_after: int
    seconds: float


def _unindexed_rows(table: Any) -> int:
    return sum(int(i.num_unindexed_rows or 0) for i in table.list_indices()
               if i.columns and i.columns[0] in SCALAR_INDEXES)


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def optimize_table(table: Any, path: Path, *,
                   keep_versions: timedelta = KEEP_VERSIONS) -> TableReport:
    """Indexes present and current, fragments compacted, versions older than
    ``keep_versions`` pruned."""
    started = time.perf_counter()
    created = ensure_scalar_indexes(table)
    unindexed = _unindexed_rows(table)
    fragments = int(table.stats()["fragment_stats"]["num_fragments"])
    versions = len(table.list_versions())
    size = _disk_bytes(path)
    try:
        # Compaction, then the rows written since each index was built are added to it,
        # then versions older than keep_versions go (with their data and index files).
        table.optimize(cleanup_older_than=keep_versions)
    except (OSError, RuntimeError) as exc:
        if "onflict" in str(exc) or "retry" in str(exc).lower():
            raise StorageBusy(f"LanceDB table {table.name} is busy: {exc}") from exc
        raise
    return TableReport(
        table=table.name,
        rows=int(table.count_rows()),
        indexes_created=created,
        unindexed_rows_before=unindexed,
        fragments_before=fragments,
        fragments_after=int(table.stats()["fragment_stats"]["num_fragments"]),
        versions_before=versions,
        versions_after=len(table.list_versions()),
        bytes_before=size,
        bytes_after=_disk_bytes(path),
        seconds=time.perf_counter() - started,
    )


def optimize_vectors(directory: Path, *,
                     keep_versions: timedelta = KEEP_VERSIONS) -> list[TableReport]:
    """``optimize_table`` on every model's chunk table under ``directory``."""
    if not directory.is_dir():
        return []
    db = lancedb.connect(str(directory))
    return [optimize_table(db.open_table(name), directory / f"{name}.lance",
                           keep_versions=keep_versions)
            for name in db.list_tables().tables if name.startswith(TABLE_PREFIX)]
