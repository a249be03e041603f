"""Finding the chunks that answer a question: vector search, or vector fused with full text.

``vector`` is the embedding search alone. ``hybrid`` also runs LanceDB's native full-text
search (BM25 over the chunk text, an inverted index on ``text``) under the same creator and
course filter, and fuses the two rankings by reciprocal rank fusion::

    fused(chunk) = 1 / (RRF_K + vector rank) + TEXT_WEIGHT / (RRF_K + text rank)

so a chunk that holds the question's exact term (a name, a number, an identifier the
embedding blurs) rises even when its vector rank is poor. Fusion decides which chunks are
returned and in what order. A hit's ``score`` stays on the cosine scale, because the answerer
reads it as relevance (and abstains below a threshold) and a BM25 or RRF value is on another
scale: its cosine similarity to the question, plus at most ``TEXT_BONUS`` in proportion to its
BM25 (the best full-text match gets all of it), so the answerer, which ranks sentences partly
by their chunk's score, also sees the words.

The parameters were chosen on the TUNING lectures only (``benchmarks/heldout/README.md``,
``python -m benchmarks.retrieval_audio --sets tuning``): text weights 0.5/1, text depths 3/5,
bonuses 0/0.1/0.2. A deep full-text list hurt: it matches any word of the question, so past
the first few it ranks chunks by common words and outvotes the vector side.

Safety: the filter is built only from validated ids (``VectorStore`` does it); the question
reaches the full-text engine only as plain words (``text_query``), as a match query, never
as query syntax, so quotes, colons or parentheses cannot break or widen it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from chronos_pipeline.lib.vectors import Hit, VectorStore

MODES = ("vector", "hybrid")
# 60 is the constant of the original RRF paper (Cormack et al., 2009).
RRF_K = 60
TEXT_WEIGHT = 1.0
# Each list is read this deep before fusing, so a chunk ranked low by one side can still
# win on the other.
CANDIDATES = 20
# The full-text list is cut short: past the first few it ranks by common words.
TEXT_CANDIDATES = 3
# Added to a returned chunk's score in proportion to its BM25 (see above).
TEXT_BONUS = 0.1
MAX_QUERY_WORDS = 64
# Edits a full-text term may be away from a word of the transcript (0: exact terms only).
FUZZINESS = 0

_WORD = re.compile(r"\w+")


def text_query(question: str) -> str:
    """The question as plain space-separated words (letters, digits, underscores): what the
    full-text index's own tokenizer would make of it, minus anything it could parse."""
    return " ".join(_WORD.findall(question.lower())[:MAX_QUERY_WORDS])


def fuse(rankings: Sequence[tuple[Sequence[Hit], float]], k: int) -> list[Hit]:
    """Reciprocal rank fusion of several rankings of the same chunks, each with its weight;
    the first ranking that holds a chunk supplies its hit (and so its score)."""
    fused: dict[tuple[str, int], float] = {}
    first: dict[tuple[str, int], Hit] = {}
    for hits, weight in rankings:
        for rank, hit in enumerate(hits, 1):
            key = (hit.video_id, hit.chunk_index)
            fused[key] = fused.get(key, 0.0) + weight / (RRF_K + rank)
            first.setdefault(key, hit)
    order = sorted(fused, key=lambda key: fused[key], reverse=True)
    return [first[key] for key in order[:k]]


def search(
    store: VectorStore,
    question: str,
    vector: np.ndarray,
    *,
    creator_id: str,
    course_id: str | None = None,
    course_ids: list[str] | None = None,
    k: int = 5,
    mode: str = "vector",
) -> list[Hit]:
    """The ``k`` chunks that best answer ``question`` (embedded as ``vector``) among one
    creator's lectures (of ``course_id``, or of any of ``course_ids``)."""
    if mode not in MODES:
        raise ValueError(f"retrieval mode {mode!r} is not one of {', '.join(MODES)}")
    if mode == "vector":
        return store.search(vector, creator_id=creator_id, course_id=course_id, k=k,
                            course_ids=course_ids)
    depth = max(k, CANDIDATES)
    by_vector = store.search(vector, creator_id=creator_id, course_id=course_id, k=depth,
                             course_ids=course_ids)
    words = text_query(question)
    matched = store.text_search(words, vector, creator_id=creator_id, course_id=course_id,
                                k=TEXT_CANDIDATES, course_ids=course_ids,
                                fuzziness=FUZZINESS) if words else []
    fused = fuse([(by_vector, 1.0), ([hit for hit, _ in matched], TEXT_WEIGHT)], k)
    best = max((bm25 for _, bm25 in matched), default=0.0)
    if not TEXT_BONUS or best <= 0:
        return fused
    bm25_of = {(h.video_id, h.chunk_index): bm25 for h, bm25 in matched}
    return [replace(h, score=round(h.score + TEXT_BONUS * bm25_of.get(
        (h.video_id, h.chunk_index), 0.0) / best, 4)) for h in fused]
