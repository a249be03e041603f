"""LanceDB holds exactly a video's chunks, and searches never cross creators."""

from __future__ import annotations

from pathlib import Path

import lancedb
import numpy as np
import pytest

from chronos_pipeline.lib.chunking import Chunk, Sentence
from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.vectors import VectorStore

ADA, BOB = "cr_00000000000000aa", "cr_00000000000000bb"
V1, V2 = "vd_0000000000000001", "vd_0000000000000002"


def _chunks(n: int) -> list[Chunk]:
    return [Chunk(i, i * 10.0, i * 10.0 + 9, f"chunk {i}", [Sentence(i * 10.0, i * 10.0 + 9,
                                                                      f"chunk {i}")])
            for i in range(n)]


def _vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def store(tmp_path: Path) -> VectorStore:
    return VectorStore(tmp_path / "lancedb", "test/model-8", 8)


def test_rewriting_a_video_replaces_its_rows_instead_of_adding(store: VectorStore) -> None:
    assert store.replace_video(creator_id=ADA, video_id=V1, course_id=None,
                               chunks=_chunks(5), vectors=_vectors(5, 1)) == 5
    assert store.replace_video(creator_id=ADA, video_id=V1, course_id=None,
                               chunks=_chunks(5), vectors=_vectors(5, 2)) == 5
    assert store.replace_video(creator_id=ADA, video_id=V1, course_id=None,
                               chunks=_chunks(3), vectors=_vectors(3, 3)) == 3


def test_rewriting_one_video_leaves_the_others_alone(store: VectorStore) -> None:
    store.replace_video(creator_id=ADA, video_id=V1, course_id=None, chunks=_chunks(4),
                        vectors=_vectors(4, 1))
    store.replace_video(creator_id=BOB, video_id=V2, course_id=None, chunks=_chunks(2),
                        vectors=_vectors(2, 2))
    store.replace_video(creator_id=ADA, video_id=V1, course_id=None, chunks=_chunks(1),
                        vectors=_vectors(1, 3))
    assert store.count(V2) == 2


def test_search_only_returns_the_callers_chunks(store: VectorStore) -> None:
    vectors = _vectors(4, 7)
    store.replace_video(creator_id=ADA, video_id=V1, course_id=None, chunks=_chunks(4),
                        vectors=vectors)
    store.replace_video(creator_id=BOB, video_id=V2, course_id=None, chunks=_chunks(4),
                        vectors=vectors)
    hits = store.search(vectors[2], creator_id=BOB, k=10)
    assert {h.video_id for h in hits} == {V2}
    assert hits[0].chunk_index == 2 and hits[0].score == pytest.approx(1.0, abs=1e-3)


def test_filter_values_must_be_well_formed_ids(store: VectorStore) -> None:
    with pytest.raises(ValidationError):
        store.search(_vectors(1, 1)[0], creator_id="x' OR '1'='1")


def test_every_row_carries_its_model_and_dimension(store: VectorStore) -> None:
    store.replace_video(creator_id=ADA, video_id=V1, course_id=None, chunks=_chunks(2),
                        vectors=_vectors(2, 1))
    table = lancedb.connect(str(store.directory)).open_table(store.name)
    rows = table.search().select(["embedding_model", "embedding_dim"]).to_list()
    assert {(r["embedding_model"], r["embedding_dim"]) for r in rows} == {("test/model-8", 8)}
