"""Sentence vectors stored at ingest answer exactly as embedding them on each question did."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from chronos_pipeline.lib.providers.base import ChatEvent, Cited, Finished, Passage, TextDelta
from chronos_pipeline.lib.providers.extractive_chat import MODEL_ID, ExtractiveChatModel
from chronos_pipeline.lib.sentence_vectors import chunk_texts
from chronos_pipeline.lib.vectors import Hit
from tests.conftest import World


def _passages(hits: list[Hit], *, stored: bool) -> list[Passage]:
    return [Passage(h.video_id, "Momentum indicators", h.start_s, h.end_s, h.text, h.score,
                    h.sentences, h.vectors if stored else None) for h in hits]


def _outcome(events: list[ChatEvent]) -> tuple[str, list[tuple[float, str]], list[float]]:
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    cited = next(e.passages for e in events if isinstance(e, Cited))
    return text, [(p.start_s, p.text) for p in cited], [p.score for p in cited]


def _hits(world: World, question: str) -> tuple[np.ndarray, list[Hit]]:
    services = world.services
    query, _ = services.embedder.embed([question])
    hits = services.vectors.search(query[0], creator_id=world.creator_id,
                                   k=services.settings.retrieval_k)
    return query[0], hits


def test_stored_sentence_vectors_quote_the_same_sentences_in_the_same_order_on_the_sample(
    world: World, sample_questions: list[dict[str, Any]]
) -> None:
    answerer = ExtractiveChatModel(world.services.embedder)
    for item in sample_questions:
        question = item["question"]
        query, hits = _hits(world, question)
        assert hits and all(h.vectors is not None for h in hits)
        # Today's request path: the question and every sentence and window embedded here.
        on_request = list(answerer.answer(question, _passages(hits, stored=False)))
        precomputed = list(answerer.answer(question, _passages(hits, stored=True),
                                           query_vector=query))
        text, cited, scores = _outcome(precomputed)
        expected_text, expected_cited, expected_scores = _outcome(on_request)
        assert (text, cited) == (expected_text, expected_cited), question
        assert scores == pytest.approx(expected_scores, abs=2e-4)
        ranked, _ = answerer.rank(question, _passages(hits, stored=True), query_vector=query)
        expected_ranked, _ = answerer.rank(question, _passages(hits, stored=False))
        assert [p.start_s for p in ranked] == [p.start_s for p in expected_ranked], question


def test_an_answer_from_stored_vectors_embeds_nothing_but_bills_its_chat_tokens(
    world: World
) -> None:
    answerer = ExtractiveChatModel(world.services.embedder)
    question = "Who created the RSI?"
    query, hits = _hits(world, question)
    events = list(answerer.answer(question, _passages(hits, stored=True), query_vector=query))
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert [u.model for u in finished.usage] == [MODEL_ID]

    # Without stored vectors (rows from before them) the sentences are embedded here,
    # but the question's vector from the search is reused, not embedded a second time.
    fallback = list(answerer.answer(question, _passages(hits, stored=False), query_vector=query))
    today = list(answerer.answer(question, _passages(hits, stored=False)))
    tokens = [_ranking_tokens(fallback), _ranking_tokens(today)]
    assert tokens[0] > 0
    assert tokens[1] - tokens[0] == world.services.embedder.count_tokens(question)
    assert _outcome(fallback)[:2] == _outcome(events)[:2] == _outcome(today)[:2]


def _ranking_tokens(events: list[ChatEvent]) -> float:
    finished = events[-1]
    assert isinstance(finished, Finished)
    return sum(u.quantities["input_token"] for u in finished.usage if u.model != MODEL_ID)


def _texts(hit: Hit) -> tuple[list[str], list[str]]:
    from chronos_pipeline.lib.chunking import Chunk, Sentence

    chunk = Chunk(hit.chunk_index, hit.start_s, hit.end_s, hit.text,
                  [Sentence(a, b, t) for a, b, t in hit.sentences])
    return chunk_texts(chunk)


def test_ingest_stores_each_chunks_sentence_and_window_vectors_from_the_embedder(
    world: World
) -> None:
    _query, hits = _hits(world, "What is a moving average?")
    embedder = world.services.embedder
    for hit in hits:
        sentences, windows = _texts(hit)
        assert hit.vectors is not None
        expected, _ = embedder.embed([*sentences, *windows])
        np.testing.assert_allclose(hit.vectors.sentences, expected[: len(sentences)],
                                   atol=1e-4)
        np.testing.assert_allclose(hit.vectors.windows, expected[len(sentences):], atol=1e-4)
