"""Chunk vectors in LanceDB, one table per embedding model, every row tagged by creator.

Writes replace one video's rows atomically (``merge_insert`` keyed by video and chunk,
deleting the video's stale rows), so re-running a partition never duplicates vectors.
Searches are always filtered to one creator (and optionally one course); the filter is
built only from ids that have passed ``ids.require``.

Each row also holds its sentences' vectors and their windows' (``sentence_vectors.py``),
which the extractive answerer scores. A table made before those columns existed gets them
(empty) on its next write; rows without them are scored by embedding on the request path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa

from chronos_pipeline.lib import ids
from chronos_pipeline.lib.chunking import Chunk
from chronos_pipeline.lib.errors import ConfigurationError, StorageBusy
from chronos_pipeline.lib.providers.base import SentenceVectors
from chronos_pipeline.lib.vector_maintenance import ensure_scalar_indexes

SENTENCE_COLUMNS = ("sentence_vectors", "window_vectors")

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
    vectors: SentenceVectors | None = field(default=None, compare=False, repr=False)


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


def _vector_list(dimension: int) -> pa.DataType:
    return pa.list_(pa.list_(pa.float32(), dimension))


def _sentence_fields(dimension: int) -> list[pa.Field]:
    return [pa.field(name, _vector_list(dimension)) for name in SENTENCE_COLUMNS]


def _vector_lists(arrays: Sequence[np.ndarray], dimension: int) -> pa.Array:
    """A list of vectors per row, from one (n, dimension) array per row."""
    offsets = np.cumsum([0, *(len(a) for a in arrays)], dtype=np.int32)
    flat = (np.concatenate([np.asarray(a, dtype=np.float32).reshape(-1) for a in arrays])
            if arrays else np.zeros(0, dtype=np.float32))
    values = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dimension)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values,
                                    type=_vector_list(dimension))


def _row_vectors(column: pa.ChunkedArray, row: int, dimension: int) -> np.ndarray | None:
    item = column[row]
    if not item.is_valid:
        return None
    values = item.values.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(-1, dimension)


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


def table_schema(dimension: int) -> pa.Schema:
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
            *_sentence_fields(dimension),
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
            if create:
                ensure_scalar_indexes(table)  # a table from before the indexes gets them
                return self._with_sentence_columns(table)
            return table
        if not create:
            return None
        table = self._db.create_table(self.name, schema=table_schema(self.dimension), exist_ok=True)
        ensure_scalar_indexes(table)
        return table

    def _with_sentence_columns(self, table: Any) -> Any:
        """An older table gains the sentence-vector columns, empty for its existing rows."""
        names = set(table.schema.names)
        missing = [f for f in _sentence_fields(self.dimension) if f.name not in names]
        if missing:
            table.add_columns(missing)
        return table

    def replace_video(
        self,
        *,
        creator_id: str,
        video_id: str,
        course_id: str | None,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        sentence_vectors: Sequence[SentenceVectors] | None = None,
    ) -> int:
        """Make the table hold exactly ``chunks`` for this video; returns the row count.

        ``sentence_vectors`` (one per chunk) are stored for the extractive answerer; without
        them the rows' sentence columns stay empty."""
        ids.require(creator_id, "creator")
        ids.require(video_id, "video")
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if sentence_vectors is not None:
            if len(sentence_vectors) != len(chunks):
                raise ValueError("one set of sentence vectors per chunk")
            if not all(v.fits(len(c.sentences))
                       for v, c in zip(sentence_vectors, chunks, strict=True)):
                raise ValueError("one sentence vector per sentence, one window per later one")
            sentences = _vector_lists([v.sentences for v in sentence_vectors], self.dimension)
            windows = _vector_lists([v.windows for v in sentence_vectors], self.dimension)
        else:
            sentences = windows = pa.nulls(len(chunks), _vector_list(self.dimension))
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
                "sentence_vectors": sentences,
                "window_vectors": windows,
            },
            schema=table_schema(self.dimension),
        )
        table = self._table(create=True)
        # Deleting "rows of this video not in the new set" makes merge_insert join against
        # every row of the table (1.7 s at 1 M rows, benchmarks/vectors_scale.py). Most
        # rewrites (a retry, a re-embedding) keep the chunk indexes, leaving nothing to
        # delete: an upsert alone, through the video_id index, is then the same single
        # commit at a few percent of the cost. Only a video that lost chunks pays for the
        # full join. The count after catches a concurrent writer of the same video.
        kept = ", ".join(str(int(c.index)) for c in chunks)
        surplus = f"video_id = '{video_id}'" + (f" AND chunk_index NOT IN ({kept})"
                                                if kept else "")
        try:
            if table.count_rows(surplus):
                self._merge(table, rows, delete_where=f"video_id = '{video_id}'")
            else:
                self._merge(table, rows, delete_where=None)
                if self.count(video_id) != len(chunks):
                    self._merge(table, rows, delete_where=f"video_id = '{video_id}'")
        except (OSError, RuntimeError) as exc:
            if "onflict" in str(exc) or "retry" in str(exc).lower():
                raise StorageBusy(f"LanceDB table {self.name} is busy: {exc}") from exc
            raise
        return self.count(video_id)

    @staticmethod
    def _merge(table: Any, rows: pa.Table, *, delete_where: str | None) -> None:
        merge = (table.merge_insert(["video_id", "chunk_index"])
                 .when_matched_update_all().when_not_matched_insert_all())
        if delete_where is not None:
            merge = merge.when_not_matched_by_source_delete(delete_where)
        merge.execute(rows)

    def count(self, video_id: str) -> int:
        ids.require(video_id, "video")
        table = self._table()
        if table is None:
            return 0
        return int(table.count_rows(f"video_id = '{video_id}'"))

    def holds(self, video_id: str, chunks: Sequence[Chunk], *, course_id: str | None,
              sentence_vectors: bool) -> bool:
        """Whether this model's table already holds exactly ``chunks`` for the video (same
        indexes, texts and times, the course it is filed under, and sentence vectors when
        they are wanted): then embedding it again would buy the same vectors twice."""
        ids.require(video_id, "video")
        table = self._table()
        if table is None:
            return not chunks
        columns = ["chunk_index", "text", "start_s", "end_s", "course_id", "embedding_model"]
        if sentence_vectors:
            if "sentence_vectors" not in table.schema.names:
                return False
            columns.append("sentence_vectors")
        rows = (table.search().where(f"video_id = '{video_id}'").select(columns)
                .limit(None).to_arrow().to_pylist())
        if len(rows) != len(chunks):
            return False
        stored = {int(r["chunk_index"]): r for r in rows}
        for chunk in chunks:
            row = stored.get(chunk.index)
            if (row is None or row["text"] != chunk.text or row["course_id"] != course_id
                    or row["embedding_model"] != self.model_id
                    or abs(float(row["start_s"]) - chunk.start_s) > 1e-3
                    or abs(float(row["end_s"]) - chunk.end_s) > 1e-3
                    or (sentence_vectors and row["sentence_vectors"] is None)):
                return False
        return True

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
        # A table from before sentence vectors has no such columns: its hits carry none.
        stored = all(name in table.schema.names for name in SENTENCE_COLUMNS)
        columns = ["video_id", "chunk_index", "start_s", "end_s", "text", "sentences",
                   *(SENTENCE_COLUMNS if stored else ()), "_distance"]
        results = (
            table.search(np.asarray(vector, dtype=np.float32).reshape(-1),
                         vector_column_name="vector")
            .distance_type("cosine")
            .where(where, prefilter=True)
            .select(columns)
            .limit(2 * k)
            .to_arrow()
        )
        rows = results.select([c for c in columns if c not in SENTENCE_COLUMNS]).to_pylist()
        # Equal distances (a lecture uploaded twice) come back in storage order, which
        # compaction changes: ties are broken by video and chunk, over twice k rows so that
        # the k kept do not depend on where the rows lie.
        order = sorted(range(len(rows)), key=lambda n: (rows[n]["_distance"],
                                                         rows[n]["video_id"],
                                                         rows[n]["chunk_index"]))[:k]
        hits = []
        for n in order:
            r = rows[n]
            vectors = None
            if stored:
                sentences = _row_vectors(results["sentence_vectors"], n, self.dimension)
                windows = _row_vectors(results["window_vectors"], n, self.dimension)
                if sentences is not None and windows is not None:
                    vectors = SentenceVectors(sentences, windows)
            hits.append(Hit(
                video_id=r["video_id"],
                chunk_index=int(r["chunk_index"]),
                start_s=float(r["start_s"]),
                end_s=float(r["end_s"]),
                text=r["text"],
                sentences=[(float(a), float(b), str(t)) for a, b, t in json.loads(r["sentences"])],
                score=round(1.0 - float(r["_distance"]), 4),
                vectors=vectors,
            ))
        return hits

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
        k: int = 5, course_ids: list[str] | None = None, fuzziness: int = 0,
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
            table.search(MatchQuery(words, "text", boost=1.0, fuzziness=fuzziness,
                                    max_expansions=50, operator=FullTextOperator.OR,
                                    prefix_length=0,
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
