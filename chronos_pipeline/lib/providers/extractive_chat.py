"""The local chat model: an extractive answerer that quotes the lecture, honestly and for $0.

It does not generate: it ranks the sentences of the retrieved chunks against the question
(with the same local embedder) and quotes the best few, each with its ``[mm:ss]`` time.
When nothing is close enough it says so instead of quoting noise.
"""

from __future__ import annotations

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
)
from chronos_pipeline.lib.timefmt import timestamp

MODEL_ID = "chronos-extractive-v1"
# Cosine similarity below which a sentence is not an answer (MiniLM scale).
MIN_SCORE = 0.2
# The chunk's own score keeps a sentence tied to the passage that matched as a whole.
SENTENCE_WEIGHT = 0.7


class ExtractiveChatModel(ChatModel):
    provider = "local"
    model_id = MODEL_ID

    def __init__(self, embedder: Embedder, *, quotes: int = 3) -> None:
        self.embedder = embedder
        self.quotes = quotes

    def rank(self, question: str, passages: Sequence[Passage]) -> tuple[list[Passage], Usage]:
        """Every sentence of ``passages`` as a passage of its own, best first."""
        candidates: list[Passage] = []
        seen: set[tuple[str, float]] = set()
        for passage in passages:
            for start, end, text in passage.sentences or [
                (passage.start_s, passage.end_s, passage.text)
            ]:
                if (passage.video_id, start) in seen:
                    continue  # overlapping chunks repeat sentences
                seen.add((passage.video_id, start))
                candidates.append(
                    Passage(passage.video_id, passage.title, start, end, text, passage.score)
                )
        if not candidates:
            return [], Usage(self.embedder.provider, self.embedder.model_id, {"input_token": 0})
        vectors, usage = self.embedder.embed([question] + [c.text for c in candidates])
        similarities = vectors[1:] @ vectors[0]
        scored = [
            Passage(c.video_id, c.title, c.start_s, c.end_s, c.text,
                    round(float(SENTENCE_WEIGHT * s + (1 - SENTENCE_WEIGHT) * c.score), 4))
            for c, s in zip(candidates, np.asarray(similarities), strict=True)
        ]
        scored.sort(key=lambda p: p.score, reverse=True)
        return scored, usage

    def answer(self, question: str, passages: Sequence[Passage]) -> Iterator[ChatEvent]:
        ranked, rank_usage = self.rank(question, passages)
        chosen = [p for p in ranked if p.score >= MIN_SCORE][: self.quotes]
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
        yield Finished([rank_usage, chat_usage])
