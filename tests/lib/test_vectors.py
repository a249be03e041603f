"""LanceDB holds exactly a video's chunks, and searches never cross creators."""

from __future__ import annotations

import json
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pytest

from chronos_pipeline.lib.chunking import Chunk, Sentence
from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.providers.base import SentenceVectors
from chronos_pipeline.lib.vectors import SENTENCE_COLUMNS, VectorStore, table_schema

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


def _sentence_chunks(sizes: list[int]) -> list[Chunk]:
    chunks = []
    for i, n in enumerate(sizes):
        sentences = [Sentence(i * 100.0 + j, i * 100.0 + j + 1, f"chunk {i} sentence {j}.")
                     for j in range(n)]
        chunks.append(Chunk(i, sentences[0].start_s, sentences[-1].end_s,
                            " ".join(s.text for s in sentences), sentences))
    return chunks


def _sentence_vectors(chunks: list[Chunk]) -> list[SentenceVectors]:
    return [SentenceVectors(_vectors(len(c.sentences), 10 + c.index),
                            _vectors(len(c.sentences) - 1, 20 + c.index)) for c in chunks]


def test_search_returns_each_chunks_stored_sentence_and_window_vectors(
    store: VectorStore
) -> None:
    chunks = _sentence_chunks([3, 1, 4])
    made = _sentence_vectors(chunks)
    vectors = _vectors(3, 5)
    store.replace_video(creator_id=ADA, video_id=V1, course_id=None, chunks=chunks,
                        vectors=vectors, sentence_vectors=made)
    hits = store.search(vectors[0], creator_id=ADA, k=3)
    assert len(hits) == 3
    for hit in hits:
        stored = made[hit.chunk_index]
        assert hit.vectors is not None
        np.testing.assert_array_equal(hit.vectors.sentences, stored.sentences)
        np.testing.assert_array_equal(hit.vectors.windows, stored.windows)


def test_sentence_vectors_that_do_not_match_the_sentences_are_refused(
    store: VectorStore
) -> None:
    chunks = _sentence_chunks([3])
    wrong = [SentenceVectors(_vectors(3, 1), _vectors(3, 2))]  # one window too many
    with pytest.raises(ValueError, match="window"):
        store.replace_video(creator_id=ADA, video_id=V1, course_id=None, chunks=chunks,
                            vectors=_vectors(1, 3), sentence_vectors=wrong)
    assert store.count(V1) == 0


def test_a_table_from_before_sentence_vectors_is_searched_and_then_gains_them(
    store: VectorStore
) -> None:
    old_schema = pa.schema([f for f in table_schema(8) if f.name not in SENTENCE_COLUMNS])
    db = lancedb.connect(str(store.directory))
    chunks = _sentence_chunks([2, 2])
    vectors = _vectors(2, 4)
    db.create_table(store.name, pa.table({
        "video_id": [V1, V1], "creator_id": [ADA, ADA], "course_id": [None, None],
        "chunk_index": pa.array([0, 1], pa.int32()), "start_s": [0.0, 100.0],
        "end_s": [2.0, 102.0], "text": [c.text for c in chunks],
        "sentences": [json.dumps([[s.start_s, s.end_s, s.text] for s in c.sentences])
                      for c in chunks],
        "embedding_model": ["test/model-8"] * 2, "embedding_dim": pa.array([8, 8], pa.int32()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 8),
    }, schema=old_schema))

    old_hits = store.search(vectors[0], creator_id=ADA, k=2)
    assert [h.chunk_index for h in old_hits] == [0, 1]
    assert all(h.vectors is None for h in old_hits)

    # Another video written now: the table gains the columns, the old rows stay without.
    newer = _sentence_chunks([2])
    store.replace_video(creator_id=ADA, video_id=V2, course_id=None, chunks=newer,
                        vectors=vectors[:1], sentence_vectors=_sentence_vectors(newer))
    hits = store.search(vectors[0], creator_id=ADA, k=3)
    assert {(h.video_id, h.vectors is not None) for h in hits} == {(V1, False), (V2, True)}
    assert store.count(V1) == 2
