"""Chunk vectors in LanceDB, one table per embedding model, every row tagged by creator.

Writes replace one video's rows atomically (``merge_insert`` keyed by video and chunk,
deleting the video's stale rows), so re-running a partition never duplicates vectors.
Searches are always filtered to one creator (and optionally one course); the filter is
built only from ids that have passed ``ids.require``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa

from chronos_pipeline.lib import ids
from chronos_pipeline.lib.chunking import Chunk
from chronos_pipeline.lib.errors import ConfigurationError, StorageBusy

# The full-text index on ``text``: English stemming and stop words, lower case, split on
# anything that is not a letter or digit (so ``dict.setdefault`` is ``dict`` + ``setdefault``).
TEXT_INDEX = "text_idx"


@dataclass(frozen=True)
class Hit:
    video_id: str
    chunk_index: int
    start_s: float
    end_s: float
    text: str
    sentences: list[tuple[float, float, str]]
    score: float


def table_name(model_id: str) -> str:
    return "chunks__" + re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")


def delete_everywhere(directory: Path, *, video_id: str | None = None,
                      creator_id: str | None = None) -> int:
    """Delete a video's (or a whole creator's) rows from every model's table; returns how
    many went. Needs no embedding model, so deleting never loads one."""
    if (video_id is None) == (creator_id is None):
        raise ValueError("give exactly one of video_id and creator_id")
    where = (f"video_id = '{ids.require(video_id, 'video')}'" if video_id is not None
             else f"creator_id = '{ids.require(str(creator_id), 'creator')}'")
    if not directory.is_dir():
        return 0
    db = lancedb.connect(str(directory))
    removed = 0
    for name in db.list_tables().tables:
        if not name.startswith("chunks__"):
            continue
        table = db.open_table(name)
        before = int(table.count_rows(where))
        if before:
            try:
                table.delete(where)
            except (OSError, RuntimeError) as exc:
                if "onflict" in str(exc) or "retry" in str(exc).lower():
                    raise StorageBusy(f"LanceDB table {name} is busy: {exc}") from exc
                raise
            removed += before
    return removed


def move_everywhere(directory: Path, video_id: str, course_id: str | None) -> int:
    """Put a video's rows in every model's table under ``course_id`` (a lesson moved to
    another course, or out of any), so course-scoped search follows the catalog."""
    where = f"video_id = '{ids.require(video_id, 'video')}'"
    value = f"'{ids.require(course_id, 'course')}'" if course_id is not None else "NULL"
    if not directory.is_dir():
        return 0
    db = lancedb.connect(str(directory))
    moved = 0
    for name in db.list_tables().tables:
        if name.startswith("chunks__"):
            table = db.open_table(name)
            count = int(table.count_rows(where))
            if count:
                table.update(where=where, values_sql={"course_id": value})
                moved += count
    return moved


def scope_filter(creator_id: str, course_id: str | None = None,
                 course_ids: list[str] | None = None) -> str | None:
    """The LanceDB filter for one creator's rows (of one course, or of any of several);
    ``None`` when ``course_ids`` is empty (nothing is in scope). Ids only, each validated."""
    where = f"creator_id = '{ids.require(creator_id, 'creator')}'"
    if course_id is not None:
        where += f" AND course_id = '{ids.require(course_id, 'course')}'"
    if course_ids is not None:
        if not course_ids:
            return None
        listed = ", ".join(f"'{ids.require(c, 'course')}'" for c in course_ids)
        where += f" AND course_id IN ({listed})"
    return where


def _schema(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            ("video_id", pa.string()),
            ("creator_id", pa.string()),
            ("course_id", pa.string()),
            ("chunk_index", pa.int32()),
            ("start_s", pa.float64()),
            ("end_s", pa.float64()),
            ("text", pa.string()),
            ("sentences", pa.string()),
            ("embedding_model", pa.string()),
            ("embedding_dim", pa.int32()),
            ("vector", pa.list_(pa.float32(), dimension)),
        ]
    )


class VectorStore:
    def __init__(self, directory: Path, model_id: str, dimension: int) -> None:
        self.directory = directory
        self.model_id = model_id
        self.dimension = dimension
        self.name = table_name(model_id)
        self._db = lancedb.connect(str(directory))

    def _table(self, create: bool = False) -> Any:
        if self.name in self._db.list_tables().tables:
            table = self._db.open_table(self.name)
            stored = table.schema.field("vector").type.list_size
            if stored != self.dimension:
                raise ConfigurationError(
                    f"table {self.name} holds {stored}-dim vectors, model {self.model_id} "
                    f"gives {self.dimension}"
                )
            return table
        if not create:
            return None
        table = self._db.create_table(self.name, schema=_schema(self.dimension), exist_ok=True)
        return table

    def replace_video(
        self,
        *,
        creator_id: str,
        video_id: str,
        course_id: str | None,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
    ) -> int:
        """Make the table hold exactly ``chunks`` for this video; returns the row count."""
        ids.require(creator_id, "creator")
        ids.require(video_id, "video")
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        rows = pa.table(
            {
                "video_id": [video_id] * len(chunks),
                "creator_id": [creator_id] * len(chunks),
                "course_id": [course_id] * len(chunks),
                "chunk_index": pa.array([c.index for c in chunks], pa.int32()),
                "start_s": [c.start_s for c in chunks],
                "end_s": [c.end_s for c in chunks],
                "text": [c.text for c in chunks],
                "sentences": [json.dumps([[s.start_s, s.end_s, s.text] for s in c.sentences])
                              for c in chunks],
                "embedding_model": [self.model_id] * len(chunks),
                "embedding_dim": pa.array([self.dimension] * len(chunks), pa.int32()),
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.asarray(vectors, dtype=np.float32).reshape(-1)), self.dimension
                ),
            },
            schema=_schema(self.dimension),
        )
        table = self._table(create=True)
        try:
            (
                table.merge_insert(["video_id", "chunk_index"])
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .when_not_matched_by_source_delete(f"video_id = '{video_id}'")
                .execute(rows)
            )
        except (OSError, RuntimeError) as exc:
            if "onflict" in str(exc) or "retry" in str(exc).lower():
                raise StorageBusy(f"LanceDB table {self.name} is busy: {exc}") from exc
            raise
        return self.count(video_id)

    def count(self, video_id: str) -> int:
        ids.require(video_id, "video")
        table = self._table()
        if table is None:
            return 0
        return int(table.count_rows(f"video_id = '{video_id}'"))

    def delete_video(self, video_id: str) -> None:
        ids.require(video_id, "video")
        table = self._table()
        if table is not None:
            table.delete(f"video_id = '{video_id}'")

    def search(
        self, vector: np.ndarray, *, creator_id: str, course_id: str | None = None, k: int = 5,
        course_ids: list[str] | None = None,
    ) -> list[Hit]:
        """The ``k`` chunks nearest to ``vector`` among this creator's videos (of
        ``course_id``, or of any of ``course_ids`` when given: a student's courses)."""
        # Every value in the filter is a validated id: nothing user-typed reaches it.
        where = f"creator_id = '{ids.require(creator_id, 'creator')}'"
        if course_id is not None:
            where += f" AND course_id = '{ids.require(course_id, 'course')}'"
        if course_ids is not None:
            if not course_ids:
                return []
            listed = ", ".join(f"'{ids.require(c, 'course')}'" for c in course_ids)
            where += f" AND course_id IN ({listed})"
        table = self._table()
        if table is None:
            return []
        results = (
            table.search(np.asarray(vector, dtype=np.float32).reshape(-1))
            .distance_type("cosine")
            .where(where, prefilter=True)
            .select(["video_id", "chunk_index", "start_s", "end_s", "text", "sentences",
                     "_distance"])
            .limit(k)
            .to_list()
        )
        return [
            Hit(
                video_id=r["video_id"],
                chunk_index=int(r["chunk_index"]),
                start_s=float(r["start_s"]),
                end_s=float(r["end_s"]),
                text=r["text"],
                sentences=[(float(a), float(b), str(t)) for a, b, t in json.loads(r["sentences"])],
                score=round(1.0 - float(r["_distance"]), 4),
            )
            for r in results
        ]

    def ensure_text_index(self) -> bool:
        """Give the table its full-text index on ``text`` if it has none; True if made.

        Once made, it needs no rebuild: rows written later (``merge_insert``) are searched
        unindexed until ``refresh_text_index`` folds them in, and deleted or replaced rows
        are never returned (measured in ``tests/lib/test_retrieval.py``)."""
        from lancedb.index import FTS

        table = self._table()
        if table is None:
            return False
        if any(index.name == TEXT_INDEX for index in table.list_indices()):
            return False
        table.create_index("text", config=FTS(), name=TEXT_INDEX)
        return True

    def refresh_text_index(self) -> int:
        """Fold rows written since the index was built into it (incremental, not a rebuild);
        returns how many rows were unindexed before. Off the request path: it writes."""
        table = self._table()
        if table is None or self.ensure_text_index():
            return 0
        unindexed = int(table.index_stats(TEXT_INDEX).num_unindexed_rows)
        if unindexed:
            # Only this index, by delta: ``optimize()`` would also compact and prune.
            table.to_lance().optimize.optimize_indices(index_names=[TEXT_INDEX])
        return unindexed

    def text_search(
        self, words: str, vector: np.ndarray, *, creator_id: str, course_id: str | None = None,
        k: int = 5, course_ids: list[str] | None = None,
    ) -> list[tuple[Hit, float]]:
        """The ``k`` chunks whose text best matches ``words`` among this creator's videos,
        each with its BM25 score; a hit's own ``score`` is its cosine similarity to
        ``vector`` (the question's), so it means what a vector hit's does. ``words`` is
        matched as plain terms, never parsed as query syntax; without a full-text index
        there is nothing to find."""
        from lancedb.query import FullTextOperator, MatchQuery

        where = scope_filter(creator_id, course_id, course_ids)
        table = self._table()
        if where is None or table is None or not words.strip():
            return []
        if not any(index.name == TEXT_INDEX for index in table.list_indices()):
            return []
        results = (
            table.search(MatchQuery(words, "text", boost=1.0, fuzziness=0, max_expansions=50,
                                    operator=FullTextOperator.OR, prefix_length=0,
                                    document_granularity=None), query_type="fts")
            .where(where, prefilter=True)
            .select(["video_id", "chunk_index", "start_s", "end_s", "text", "sentences",
                     "vector", "_score"])
            .limit(k)
            .to_list()
        )
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        query_norm = float(np.linalg.norm(query)) or 1.0
        hits = []
        for r in results:
            stored = np.asarray(r["vector"], dtype=np.float32)
            cosine = float(stored @ query) / ((float(np.linalg.norm(stored)) or 1.0) * query_norm)
            hits.append((Hit(
                video_id=r["video_id"],
                chunk_index=int(r["chunk_index"]),
                start_s=float(r["start_s"]),
                end_s=float(r["end_s"]),
                text=r["text"],
                sentences=[(float(a), float(b), str(t)) for a, b, t in json.loads(r["sentences"])],
                score=round(cosine, 4),
            ), float(r["_score"])))
        return hits
