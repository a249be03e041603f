"""Hybrid retrieval finds exact terms, stays in the creator's scope, takes any question text,
and its full-text index follows every write (real LanceDB in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import lancedb
import numpy as np
import pytest

from chronos_pipeline.lib import retrieval
from chronos_pipeline.lib.chunking import Chunk, Sentence
from chronos_pipeline.lib.errors import ConfigurationError, ValidationError
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.vectors import TEXT_INDEX, Hit, VectorStore, delete_everywhere

ADA, BOB = "cr_00000000000000aa", "cr_00000000000000bb"
V1, V2, V3 = "vd_0000000000000001", "vd_0000000000000002", "vd_0000000000000003"
COURSE_A, COURSE_B = "co_000000000000000a", "co_000000000000000b"
DIM = 8

FILLER = [
    "Dictionaries map keys to values and a lookup takes constant time on average.",
    "A hash table resizes when it is about two thirds full.",
    "Keys must be hashable, so a list can never be a key.",
    "Insertion order is remembered by every modern dictionary.",
    "Counting words is a common chore in small scripts.",
    "The collections module offers more specialised containers.",
]
SETDEFAULT = "The method dict.setdefault inserts the default only when the key is missing."
PEP = "Merging with the pipe operator was proposed in PEP 584 and landed in Python 3.9."


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


def _chunks(texts: list[str]) -> list[Chunk]:
    return [Chunk(i, i * 10.0, i * 10.0 + 9, t, [Sentence(i * 10.0, i * 10.0 + 9, t)])
            for i, t in enumerate(texts)]


def _store_lecture(store: VectorStore, creator: str, video: str, texts: list[str],
                   vectors: np.ndarray, course: str | None = None) -> None:
    store.replace_video(creator_id=creator, video_id=video, course_id=course,
                        chunks=_chunks(texts), vectors=vectors)
    store.refresh_text_index()


@pytest.fixture
def store(tmp_path: Path) -> VectorStore:
    return VectorStore(tmp_path / "lancedb", "test/model-8", DIM)


@pytest.fixture
def question() -> np.ndarray:
    """The question's embedding: close to the filler, far from the chunks with the terms,
    as when an embedding blurs an identifier or a number into generic words."""
    return _unit(100)


@pytest.fixture
def lecture(store: VectorStore, question: np.ndarray) -> list[str]:
    texts = [*FILLER, SETDEFAULT, PEP]
    near = [question + 0.3 * _unit(i) for i in range(len(FILLER))]
    far = [_unit(200) - question * float(_unit(200) @ question), _unit(300) * 0.1 - question]
    vectors = np.stack([v / np.linalg.norm(v) for v in [*near, *far]]).astype(np.float32)
    _store_lecture(store, ADA, V1, texts, vectors)
    return texts


def _texts(hits: list[Hit]) -> list[str]:
    return [h.text for h in hits]


def test_hybrid_finds_the_only_chunk_naming_an_identifier_when_the_embedding_misses_it(
    store: VectorStore, lecture: list[str], question: np.ndarray,
) -> None:
    ask = "What does setdefault give back when a key is absent?"
    vector_only = retrieval.search(store, ask, question, creator_id=ADA, k=3, mode="vector")
    assert SETDEFAULT not in _texts(vector_only)
    hybrid = retrieval.search(store, ask, question, creator_id=ADA, k=3, mode="hybrid")
    assert SETDEFAULT in _texts(hybrid)


def test_hybrid_finds_the_only_chunk_holding_a_number_when_the_embedding_misses_it(
    store: VectorStore, lecture: list[str], question: np.ndarray,
) -> None:
    ask = "Which proposal, 584, added merging?"
    assert PEP not in _texts(retrieval.search(store, ask, question, creator_id=ADA, k=3))
    hybrid = retrieval.search(store, ask, question, creator_id=ADA, k=3, mode="hybrid")
    assert PEP in _texts(hybrid)


def test_hybrid_scores_stay_on_the_cosine_scale_the_answerer_reads(
    store: VectorStore, lecture: list[str], question: np.ndarray,
) -> None:
    hits = retrieval.search(store, "dict.setdefault", question, creator_id=ADA, k=8,
                            mode="hybrid")
    cosine = {h.text: h.score for h in store.search(question, creator_id=ADA, k=8)}
    for hit in hits:
        bonus = hit.score - cosine[hit.text]
        assert -1e-3 <= bonus <= retrieval.TEXT_BONUS + 1e-3
        if hit.text != SETDEFAULT:  # no word of the question: its cosine, unchanged
            assert bonus == pytest.approx(0.0, abs=1e-3)


def test_full_text_search_never_returns_another_creators_or_courses_chunks(
    store: VectorStore, question: np.ndarray,
) -> None:
    vectors = np.stack([_unit(1), _unit(2)])
    _store_lecture(store, BOB, V2, ["Bob explains dict.setdefault.", "Bob on PEP 584."], vectors)
    _store_lecture(store, ADA, V1, ["Ada on hashing.", "Ada on dict.setdefault too."], vectors,
                   course=COURSE_A)
    _store_lecture(store, ADA, V3, ["Ada's other course: dict.setdefault."], vectors[:1],
                   course=COURSE_B)
    for mode in retrieval.MODES:
        hits = retrieval.search(store, "dict.setdefault PEP 584", question, creator_id=ADA,
                                k=10, mode=mode)
        assert {h.video_id for h in hits} == {V1, V3}
        in_course = retrieval.search(store, "dict.setdefault", question, creator_id=ADA,
                                     course_id=COURSE_A, k=10, mode=mode)
        assert {h.video_id for h in in_course} == {V1}
        assert retrieval.search(store, "setdefault", question, creator_id=ADA, k=10,
                                course_ids=[], mode=mode) == []
    words = store.text_search("bob setdefault 584", question, creator_id=ADA, k=10)
    assert words and {hit.video_id for hit, _ in words} <= {V1, V3}


@pytest.mark.parametrize("ask", [
    'What does "dict.setdefault" return?',
    "title: setdefault (the method) [PEP 584]",
    "setdefault' OR creator_id = 'cr_00000000000000bb",
    "+-!(){}[]^\"~*?:\\/ AND OR NOT",
    "???",
    "naïve café — 3.9 % ≥ 584",
])
def test_questions_with_quotes_colons_or_parentheses_are_answered_without_error(
    store: VectorStore, lecture: list[str], question: np.ndarray, ask: str,
) -> None:
    _store_lecture(store, BOB, V2, ["Bob explains dict.setdefault and PEP 584."],
                   np.stack([_unit(5)]))
    hits = retrieval.search(store, ask, question, creator_id=ADA, k=5, mode="hybrid")
    assert len(hits) == 5
    assert {h.video_id for h in hits} == {V1}


def test_the_question_reaches_full_text_search_as_plain_words_only() -> None:
    assert retrieval.text_query('What is "dict.setdefault" (PEP: 584)?') == (
        "what is dict setdefault pep 584")
    assert retrieval.text_query("?!:()") == ""


def test_filter_ids_are_validated_for_full_text_search_too(
    store: VectorStore, lecture: list[str], question: np.ndarray,
) -> None:
    with pytest.raises(ValidationError):
        retrieval.search(store, "setdefault", question, creator_id="x' OR '1'='1",
                         mode="hybrid")


def test_the_index_is_current_after_a_video_is_replaced(
    store: VectorStore, lecture: list[str], question: np.ndarray,
) -> None:
    vectors = np.stack([_unit(7), _unit(8)])
    store.replace_video(creator_id=ADA, video_id=V1, course_id=None,
                        chunks=_chunks(["Now about zebras and 1978.", "Nothing else."]),
                        vectors=vectors)
    # Before the index is refreshed: the new rows are searched unindexed, the old are gone.
    assert _texts([h for h, _ in store.text_search("setdefault", question, creator_id=ADA)]) == []
    found = store.text_search("zebras 1978", question, creator_id=ADA)
    assert [h.text for h, _ in found] == ["Now about zebras and 1978."]
    assert store.refresh_text_index() > 0
    table = lancedb.connect(str(store.directory)).open_table(store.name)
    assert table.index_stats(TEXT_INDEX).num_unindexed_rows == 0
    assert [h.text for h, _ in store.text_search("zebra", question, creator_id=ADA)] == [
        "Now about zebras and 1978."]
    assert store.text_search("setdefault", question, creator_id=ADA) == []


def test_the_index_is_current_after_a_video_is_deleted(
    store: VectorStore, lecture: list[str], question: np.ndarray,
) -> None:
    _store_lecture(store, ADA, V2, ["Another lecture on dict.setdefault."], np.stack([_unit(9)]))
    store.delete_video(V1)
    assert {h.video_id for h, _ in store.text_search("setdefault", question,
                                                     creator_id=ADA)} == {V2}
    delete_everywhere(store.directory, video_id=V2)
    assert store.text_search("setdefault", question, creator_id=ADA) == []
    store.refresh_text_index()
    assert retrieval.search(store, "setdefault", question, creator_id=ADA, mode="hybrid") == []


def test_retrieval_mode_is_a_setting_with_two_choices(tmp_path: Path) -> None:
    assert Settings.from_env({"CHRONOS_DATA_DIR": str(tmp_path),
                              "CHRONOS_RETRIEVAL": "hybrid"}).retrieval == "hybrid"
    with pytest.raises(ConfigurationError, match="CHRONOS_RETRIEVAL"):
        Settings.from_env({"CHRONOS_DATA_DIR": str(tmp_path), "CHRONOS_RETRIEVAL": "bm25"})
