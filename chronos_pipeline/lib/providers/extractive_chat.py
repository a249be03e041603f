"""The local chat model: an extractive answerer that quotes the lecture, honestly and for $0.

It does not generate: it ranks the sentences of the retrieved chunks against the question
(with the same local embedder) and quotes the best few, each with its ``[mm:ss]`` time.
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


def _candidates(passages: Sequence[Passage]) -> list[tuple[Passage, str]]:
    """Every sentence once (from the best chunk holding it), with the sentence before it."""
    order: list[tuple[str, float]] = []
    found: dict[tuple[str, float], Passage] = {}
    before: dict[tuple[str, float], str] = {}
    for passage in passages:
        sentences = passage.sentences or [(passage.start_s, passage.end_s, passage.text)]
        for i, (start, end, text) in enumerate(sentences):
            key = (passage.video_id, start)
            if key not in found:  # overlapping chunks repeat sentences
                order.append(key)
                found[key] = Passage(passage.video_id, passage.title, start, end, text,
                                     passage.score)
            if i > 0 and key not in before:  # a chunk's first sentence may be another's
                before[key] = sentences[i - 1][2]
    return [(found[key], before.get(key, "")) for key in order]


class ExtractiveChatModel(ChatModel):
    provider = "local"
    model_id = MODEL_ID
    verbatim = True

    def __init__(self, embedder: Embedder, *, quotes: int = 3) -> None:
        self.embedder = embedder
        self.quotes = quotes

    def _score(
        self, question: str, passages: Sequence[Passage]
    ) -> tuple[list[tuple[Passage, float]], Usage]:
        """Each sentence with its ranking score (in the passage) and its relevance, best first."""
        candidates = _candidates(passages)
        if not candidates:
            return [], Usage(self.embedder.provider, self.embedder.model_id, {"input_token": 0})
        texts = [c.text for c, _ in candidates]
        # Only sentences whose predecessor is at hand get a second embedding.
        windowed = [i for i, (_, before) in enumerate(candidates) if before]
        windows = [f"{candidates[i][1]} {texts[i]}" for i in windowed]
        vectors, usage = self.embedder.embed([question, *texts, *windows])
        similarities = np.asarray(vectors[1:] @ vectors[0], dtype=np.float64)
        sentence = similarities[: len(texts)]
        context = sentence.copy()
        context[windowed] = similarities[len(texts) :]
        chunk = np.array([c.score for c, _ in candidates], dtype=np.float64)
        relevance = SENTENCE_WEIGHT * sentence + (1 - SENTENCE_WEIGHT) * chunk
        rank = (SENTENCE_WEIGHT * ((1 - CONTEXT_SHARE) * sentence + CONTEXT_SHARE * context)
                + (1 - SENTENCE_WEIGHT) * chunk)
        scored = [
            (Passage(c.video_id, c.title, c.start_s, c.end_s, c.text, round(float(r), 4)),
             float(rel))
            for (c, _), r, rel in zip(candidates, rank, relevance, strict=True)
        ]
        scored.sort(key=lambda item: item[0].score, reverse=True)
        return scored, usage

    def rank(self, question: str, passages: Sequence[Passage]) -> tuple[list[Passage], Usage]:
        """Every sentence of ``passages`` as a passage of its own, best first."""
        scored, usage = self._score(question, passages)
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

    def answer(self, question: str, passages: Sequence[Passage],
               history: Sequence[Turn] = ()) -> Iterator[ChatEvent]:
        scored, rank_usage = self._score(question, passages)
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
