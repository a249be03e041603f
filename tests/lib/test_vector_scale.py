"""The chunk table at scale: filter columns indexed from the start, search exact and stable
through indexing and compaction, old versions pruned."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
import pytest

from chronos_pipeline.lib.chunking import Chunk, Sentence
from chronos_pipeline.lib.vector_maintenance import (
    SCALAR_INDEXES,
    ensure_scalar_indexes,
    optimize_vectors,
)
from chronos_pipeline.lib.vectors import VectorStore, table_schema

DIM = 16
CREATORS = [f"cr_{n:016x}" for n in range(1, 5)]
COURSES = [f"co_{n:016x}" for n in range(1, 3)]
PER_VIDEO = 12

# Pruning every old version is what these tests want: no other process reads their tables.
pytestmark = pytest.mark.filterwarnings(r"ignore:optimize\(cleanup_older_than=0\)")


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(n: int) -> list[Chunk]:
    return [Chunk(i, i * 10.0, i * 10.0 + 9, f"chunk {i}",
                  [Sentence(i * 10.0, i * 10.0 + 9, f"chunk {i}")]) for i in range(n)]


def _indexed_columns(table: Any) -> set[str]:
    return {column for index in table.list_indices() for column in index.columns}


def _open(store: VectorStore) -> Any:
    return lancedb.connect(str(store.directory)).open_table(store.name)


class World:
    """A generated table written one video at a time (a fragment and a version each), with
    every vector also kept here for exact search; video 1 of each creator is a copy of video
    0 (a lecture uploaded twice), so searches meet exact ties."""

    def __init__(self, directory: Path, videos_per_creator: int = 6) -> None:
        self.store = VectorStore(directory, "test/model-16", DIM)
        self.rng = np.random.default_rng(11)
        # Clustered vectors (topics), as real embeddings are.
        self.centres = _unit(self.rng, 8)
        self.rows: dict[tuple[str, int], tuple[str, str | None, np.ndarray]] = {}
        db = lancedb.connect(str(directory))
        table = db.create_table(self.store.name, schema=table_schema(DIM))  # no index yet
        n = 0
        for creator in CREATORS:
            first: np.ndarray | None = None
            for v in range(videos_per_creator):
                n += 1
                video = f"vd_{n:016x}"
                course = COURSES[v % len(COURSES)] if v % 3 else None
                if v == 1 and first is not None:
                    vectors = first
                else:
                    picks = self.centres[self.rng.integers(len(self.centres), size=PER_VIDEO)]
                    vectors = picks + 0.35 * _unit(self.rng, PER_VIDEO)
                    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
                               ).astype(np.float32)
                first = vectors if v == 0 else first
                table.add(self._rows(creator, video, course, vectors))
                for i in range(PER_VIDEO):
                    self.rows[(video, i)] = (creator, course, vectors[i])

    def _rows(self, creator: str, video: str, course: str | None,
              vectors: np.ndarray) -> pa.Table:
        chunks = _chunks(len(vectors))
        return pa.table({
            "video_id": [video] * len(chunks), "creator_id": [creator] * len(chunks),
            "course_id": [course] * len(chunks),
            "chunk_index": pa.array([c.index for c in chunks], pa.int32()),
            "start_s": [c.start_s for c in chunks], "end_s": [c.end_s for c in chunks],
            "text": [c.text for c in chunks],
            "sentences": [f'[[{c.start_s}, {c.end_s}, "{c.text}"]]' for c in chunks],
            "embedding_model": ["test/model-16"] * len(chunks),
            "embedding_dim": pa.array([DIM] * len(chunks), pa.int32()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM),
            "sentence_vectors": pa.nulls(len(chunks), table_schema(DIM).field(
                "sentence_vectors").type),
            "window_vectors": pa.nulls(len(chunks), table_schema(DIM).field(
                "window_vectors").type),
        }, schema=table_schema(DIM))

    def queries(self) -> list[tuple[np.ndarray, str, str | None]]:
        """Stored vectors (exact ties with the copied video) and noisy ones, per scope."""
        made = []
        keys = sorted(self.rows)
        for n in range(40):
            creator, course, vector = self.rows[keys[int(self.rng.integers(len(keys)))]]
            q = vector if n % 2 else vector + 0.5 * _unit(self.rng, 1)[0]
            made.append((q / np.linalg.norm(q), creator, course if n % 3 == 0 else None))
        return made

    def exact(self, q: np.ndarray, creator: str, course: str | None, k: int
              ) -> list[tuple[str, int]]:
        scored = [(-float(np.dot(v, q)), key) for key, (c, co, v) in self.rows.items()
                  if c == creator and (course is None or co == course)]
        return [key for _, key in sorted(scored)[:k]]

    def search(self, queries: list[tuple[np.ndarray, str, str | None]]
               ) -> list[list[tuple[str, int, float]]]:
        return [[(h.video_id, h.chunk_index, h.score)
                 for h in self.store.search(q, creator_id=c, course_id=co, k=5)]
                for q, c, co in queries]

    def recall(self, queries: list[tuple[np.ndarray, str, str | None]]) -> float:
        found = total = 0
        for (q, c, co), hits in zip(queries, self.search(queries), strict=True):
            expected = set(self.exact(q, c, co, 5))
            found += len({(v, i) for v, i, _ in hits} & expected)
            total += len(expected)
        return found / total


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "lancedb")


def test_a_new_table_is_indexed_on_every_filter_column(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "lancedb", "test/model-16", DIM)
    rng = np.random.default_rng(1)
    store.replace_video(creator_id=CREATORS[0], video_id="vd_0000000000000001",
                        course_id=None, chunks=_chunks(3), vectors=_unit(rng, 3))
    assert _indexed_columns(_open(store)) >= {"creator_id", "course_id", "video_id"}


def test_a_table_from_before_the_indexes_gets_them_on_its_next_write(world: World) -> None:
    assert _indexed_columns(_open(world.store)) == set()
    world.store.replace_video(creator_id=CREATORS[0], video_id="vd_00000000000000f1",
                              course_id=None, chunks=_chunks(2),
                              vectors=_unit(world.rng, 2))
    assert _indexed_columns(_open(world.store)) == set(SCALAR_INDEXES)


def test_search_is_identical_before_and_after_indexing_and_compaction(world: World) -> None:
    queries = world.queries()
    before = world.search(queries)
    table = _open(world.store)
    assert ensure_scalar_indexes(table) == list(SCALAR_INDEXES)
    indexed = world.search(queries)
    optimize_vectors(world.store.directory, keep_versions=timedelta(0))
    compacted = world.search(queries)
    assert before == indexed == compacted
    # Ties (the copied lecture) are ordered by video, then chunk, wherever the rows lie.
    tied = [hits for hits in compacted if len(hits) > 1 and hits[0][2] == hits[1][2]]
    assert tied and all(hits[0][:2] < hits[1][:2] for hits in tied)
    # No vector index: the creator-filtered search is exact, so recall@5 is 1 (>= 0.95).
    assert world.recall(queries) == 1.0


def test_search_stays_exact_over_rows_written_after_the_indexes(world: World) -> None:
    optimize_vectors(world.store.directory, keep_versions=timedelta(0))
    ensure_scalar_indexes(_open(world.store))
    for n in range(3):  # rewritten and new videos land in rows no index has seen yet
        video = "vd_0000000000000002" if n == 0 else f"vd_00000000000000e{n}"
        vectors = _unit(world.rng, PER_VIDEO)
        world.store.replace_video(creator_id=CREATORS[0], video_id=video,
                                  course_id=COURSES[0], chunks=_chunks(PER_VIDEO),
                                  vectors=vectors)
        for i in range(PER_VIDEO):
            world.rows[(video, i)] = (CREATORS[0], COURSES[0], vectors[i])
    assert any(i.num_unindexed_rows for i in _open(world.store).list_indices())
    queries = world.queries()
    assert world.recall(queries) == 1.0
    optimize_vectors(world.store.directory, keep_versions=timedelta(0))
    assert not any(i.num_unindexed_rows for i in _open(world.store).list_indices())
    assert world.recall(queries) == 1.0


def test_optimize_compacts_fragments_and_prunes_old_versions(world: World) -> None:
    [first] = optimize_vectors(world.store.directory)
    assert first.rows == len(CREATORS) * 6 * PER_VIDEO
    assert first.fragments_before == len(CREATORS) * 6 and first.fragments_after == 1
    assert first.indexes_created == list(SCALAR_INDEXES)
    assert first.versions_after > 20  # by default, versions younger than 10 minutes stay
    [report] = optimize_vectors(world.store.directory, keep_versions=timedelta(0))
    assert report.versions_before > 20 and report.versions_after == 1
    assert report.bytes_after < report.bytes_before / 2
    assert _open(world.store).count_rows() == report.rows


def test_rewrites_that_keep_or_drop_chunks_leave_exactly_the_new_rows(world: World) -> None:
    video = "vd_0000000000000001"
    for n in (PER_VIDEO, PER_VIDEO, 5, 9, 0):
        vectors = _unit(world.rng, n)
        assert world.store.replace_video(creator_id=CREATORS[0], video_id=video,
                                         course_id=None, chunks=_chunks(n),
                                         vectors=vectors) == n
        if n:
            [hit] = world.store.search(vectors[n - 1], creator_id=CREATORS[0], k=1)
            assert (hit.video_id, hit.chunk_index) == (video, n - 1)
    assert world.store.count("vd_0000000000000002") == PER_VIDEO  # its copy is untouched


def test_optimize_of_a_directory_without_tables_does_nothing(tmp_path: Path) -> None:
    assert optimize_vectors(tmp_path / "absent") == []
