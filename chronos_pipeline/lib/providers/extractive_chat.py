"""The local chat model: an extractive answerer that quotes the lecture, honestly and for $0.

It does not generate: it ranks the sentences of the retrieved chunks against the question
(with the same local embedder) and quotes the best few, each with its ``[mm:ss]`` time.
The sentences' vectors are computed at ingest and come back with the chunks
(``sentence_vectors.py``), so answering costs the question's embedding, which the search
already made, and a little numpy; chunks stored without them are embedded here.
When nothing is close enough it says so instead of quoting noise.

A sentence is scored on its own and together with the sentence spoken just before it: in
speech the answer often leans on what came before ("Now the load factor. *It* is the number
of keys divided by the buckets."), so the question's topic sits in the previous sentence and
its answer in this one. The score of the chunk it came from keeps it tied to the passage
that matched as a whole. Near-identical sentences (a remark repeated, the same lecture stored
twice) are quoted once.

Measured with ``python -m benchmarks.retrieval`` and on held-out lectures: the preceding
window raised the share of questions whose first quote is the answering sentence; a window
that also took the following sentence, and an IDF-weighted word overlap with the question,
did not help and were left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import (
    ChatEvent,
    ChatModel,
    Cited,
    Embedder,
    Finished,
    Passage,
    TextDelta,
    Turn,
)
from chronos_pipeline.lib.sentence_vectors import window_text
from chronos_pipeline.lib.timefmt import timestamp

MODEL_ID = "chronos-extractive-v1"
# Relevance below which a sentence is not an answer (MiniLM cosine scale). Relevance is the
# sentence's own similarity blended with its chunk's, as it always was: the context window
# reorders answers but never turns an off-topic question into a quoted one.
MIN_SCORE = 0.2
# The chunk's own score keeps a sentence tied to the passage that matched as a whole.
SENTENCE_WEIGHT = 0.7
# Of SENTENCE_WEIGHT, the share given to the sentence read with the one before it.
CONTEXT_SHARE = 0.5
# Word-set overlap (Jaccard) at or above which two quotes count as the same remark.
DUPLICATE_OVERLAP = 0.8

_WORD = re.compile(r"\w+")


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def _same_remark(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return a == b
    return len(a & b) / len(a | b) >= DUPLICATE_OVERLAP


@dataclass(frozen=True)
class _Candidate:
    passage: Passage  # the sentence, with the score of the best chunk holding it
    before: str  # the sentence spoken just before it, if a retrieved chunk holds that
    at: tuple[int, int]  # (passage, sentence) it was taken from
    window_at: tuple[int, int] | None  # (passage, sentence) whose window it uses


def _candidates(passages: Sequence[Passage]) -> list[_Candidate]:
    """Every sentence once (from the best chunk holding it), with the sentence before it."""
    order: list[tuple[str, float]] = []
    found: dict[tuple[str, float], tuple[Passage, tuple[int, int]]] = {}
    before: dict[tuple[str, float], tuple[str, tuple[int, int]]] = {}
    for p, passage in enumerate(passages):
        sentences = passage.sentences or [(passage.start_s, passage.end_s, passage.text)]
        for i, (start, end, text) in enumerate(sentences):
            key = (passage.video_id, start)
            if key not in found:  # overlapping chunks repeat sentences
                order.append(key)
                found[key] = (Passage(passage.video_id, passage.title, start, end, text,
                                      passage.score), (p, i))
            if i > 0 and key not in before:  # a chunk's first sentence may be another's
                before[key] = (sentences[i - 1][2], (p, i))
    candidates = []
    for key in order:
        sentence, at = found[key]
        text, window_at = before.get(key, ("", None))
        candidates.append(_Candidate(sentence, text, at, window_at))
    return candidates


def _stored(
    passages: Sequence[Passage], candidates: Sequence[_Candidate]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The candidates' sentence and window vectors from the chunks' stored ones, or None
    when a passage has none (a row stored before they were)."""
    stored = [p.vectors for p in passages]
    if any(v is None or not v.fits(len(p.sentences))
           for v, p in zip(stored, passages, strict=True)):
        return None
    vectors = [v for v in stored if v is not None]
    sentence = np.stack([vectors[p].sentences[i] for p, i in (c.at for c in candidates)])
    windows = [vectors[c.window_at[0]].windows[c.window_at[1] - 1]
               for c in candidates if c.window_at is not None]
    window = (np.stack(windows) if windows
              else np.zeros((0, sentence.shape[1]), dtype=sentence.dtype))
    return sentence, window


class ExtractiveChatModel(ChatModel):
    provider = "local"
    model_id = MODEL_ID
    verbatim = True

    def __init__(self, embedder: Embedder, *, quotes: int = 3) -> None:
        self.embedder = embedder
        self.quotes = quotes

    def _score(
        self, question: str, passages: Sequence[Passage], query_vector: np.ndarray | None = None
    ) -> tuple[list[tuple[Passage, float]], Usage]:
        """Each sentence with its ranking score (in the passage) and its relevance, best first.

        With the question's vector and the chunks' stored sentence vectors this is numpy
        alone; otherwise the sentences and windows are embedded here, on the request path
        (rows stored before sentence vectors were)."""
        none = Usage(self.embedder.provider, self.embedder.model_id, {"input_token": 0})
        candidates = _candidates(passages)
        if not candidates:
            return [], none
        texts = [c.passage.text for c in candidates]
        # Only sentences whose predecessor is at hand get a second embedding.
        windowed = [i for i, c in enumerate(candidates) if c.before]
        stored = _stored(passages, candidates) if query_vector is not None else None
        if query_vector is not None and stored is not None:
            sentence_vectors, window_vectors = stored
            query, usage = np.asarray(query_vector, dtype=np.float32).reshape(-1), none
        else:
            windows = [window_text(candidates[i].before, texts[i]) for i in windowed]
            # The search's query vector serves only if it is this embedder's (a creator
            # whose chat searches another model's table: the question is embedded again).
            own = (query_vector is not None
                   and np.asarray(query_vector).size == self.embedder.dimension)
            asked = [] if own else [question]
            vectors, usage = self.embedder.embed([*asked, *texts, *windows])
            query = (np.asarray(query_vector, dtype=np.float32).reshape(-1) if own
                     else vectors[0])
            sentence_vectors = vectors[len(asked) : len(asked) + len(texts)]
            window_vectors = vectors[len(asked) + len(texts) :]
        sentence = np.asarray(sentence_vectors @ query, dtype=np.float64)
        context = sentence.copy()
        context[windowed] = np.asarray(window_vectors @ query, dtype=np.float64)
        chunk = np.array([c.passage.score for c in candidates], dtype=np.float64)
        relevance = SENTENCE_WEIGHT * sentence + (1 - SENTENCE_WEIGHT) * chunk
        rank = (SENTENCE_WEIGHT * ((1 - CONTEXT_SHARE) * sentence + CONTEXT_SHARE * context)
                + (1 - SENTENCE_WEIGHT) * chunk)
        scored = [
            (Passage(c.video_id, c.title, c.start_s, c.end_s, c.text, round(float(r), 4)),
             float(rel))
            for c, r, rel in zip((c.passage for c in candidates), rank, relevance, strict=True)
        ]
        scored.sort(key=lambda item: item[0].score, reverse=True)
        return scored, usage

    def rank(
        self, question: str, passages: Sequence[Passage], *,
        query_vector: np.ndarray | None = None,
    ) -> tuple[list[Passage], Usage]:
        """Every sentence of ``passages`` as a passage of its own, best first."""
        scored, usage = self._score(question, passages, query_vector)
        return [passage for passage, _ in scored], usage

    def _choose(self, scored: Sequence[tuple[Passage, float]]) -> list[Passage]:
        """The best ``quotes`` relevant sentences, each remark once."""
        chosen: list[Passage] = []
        seen: list[frozenset[str]] = []
        for passage, relevance in scored:
            if len(chosen) == self.quotes:
                break
            words = _words(passage.text)
            if relevance < MIN_SCORE or any(_same_remark(words, other) for other in seen):
                continue
            chosen.append(passage)
            seen.append(words)
        return chosen

    def answer(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = (), *,
        query_vector: np.ndarray | None = None,
    ) -> Iterator[ChatEvent]:
        scored, rank_usage = self._score(question, passages, query_vector)
        chosen = self._choose(scored)
        if not chosen:
            text = (
                "I could not find this in the lecture videos I can search. Try rephrasing, "
                "or ask about a topic the lectures cover."
            )
            yield TextDelta(text)
        else:
            yield TextDelta("Here is what the lecture says:\n")
            for passage in chosen:
                line = f'\n[{timestamp(passage.start_s)}] "{passage.text}" ({passage.title})\n'
                yield TextDelta(line)
            text = "".join(
                f'[{timestamp(p.start_s)}] "{p.text}" ({p.title})' for p in chosen
            )
        yield Cited(chosen)
        context_tokens = sum(self.embedder.count_tokens(p.text) for p in passages)
        chat_usage = Usage(
            self.provider,
            self.model_id,
            {
                "input_token": self.embedder.count_tokens(question) + context_tokens,
                "output_token": self.embedder.count_tokens(text),
            },
            # An extractive model has no tokenizer of its own: these are MiniLM word pieces.
            estimated=True,
        )
        # No candidates means no ranking call: nothing to bill for it.
        ranked = [rank_usage] if any(rank_usage.quantities.values()) else []
        yield Finished([*ranked, chat_usage])
