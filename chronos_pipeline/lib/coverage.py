"""Does anything retrieved answer the question? Decided before any chat model is called.

The score is the best cosine similarity between the question (as it stands alone) and any
sentence of the retrieved passages, computed with the local MiniLM embedder whatever the
deployment's embedder is: it costs nothing, and the threshold does not depend on how
retrieval scores its chunks (a hybrid or cloud-embedding retrieval changes those scales).
Below ``COVERAGE_MIN`` the answer is an honest "not covered", with no references and no
chat-model call, so a paid model spends nothing on it.

``COVERAGE_MIN`` is calibrated by ``python -m benchmarks.abstention`` on the tuning
libraries only (the sample and hashing lectures, and the spoken dictionaries and
temperament lectures of ``benchmarks/heldout``; covered, follow-up and off-topic
questions): the threshold at which the most off-topic questions are refused while at most
5 % of covered ones are. The same command, and ``benchmarks.trust``, report the result on
lectures it was not tuned on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import Embedder, Passage

COVERAGE_MIN = 0.378


@dataclass(frozen=True)
class Coverage:
    score: float
    covered: bool


def sentences_of(passages: Sequence[Passage]) -> list[str]:
    """Every sentence of ``passages`` once (overlapping chunks repeat sentences)."""
    seen: dict[str, None] = {}
    for passage in passages:
        for _, _, text in passage.sentences or [(passage.start_s, passage.end_s, passage.text)]:
            if text.strip():
                seen.setdefault(text.strip(), None)
    return list(seen)


class CoverageCheck:
    """``threshold=None`` turns the check off: every question goes to the chat model."""

    def __init__(self, embedder: Embedder, threshold: float | None = COVERAGE_MIN) -> None:
        self.embedder = embedder
        self.threshold = threshold

    def score(self, question: str, passages: Sequence[Passage],
              question_vector: np.ndarray | None = None) -> tuple[float, Usage | None]:
        """``question_vector``: the question's embedding by this same model; with it, the
        passages' sentence vectors stored at ingest are used and nothing is embedded."""
        stored = [p.vectors for p in passages]
        if question_vector is not None and passages and all(
                v is not None and len(v.sentences) for v in stored):
            matrix = np.concatenate([v.sentences for v in stored if v is not None])
            vector = np.asarray(question_vector, dtype=np.float32).reshape(-1)
            return float(np.max(matrix @ vector)), None
        sentences = sentences_of(passages)
        if not sentences:
            return 0.0, None
        vectors, usage = self.embedder.embed([question, *sentences])
        return float(np.max(vectors[1:] @ vectors[0])), usage

    def check(self, question: str, passages: Sequence[Passage],
              question_vector: np.ndarray | None = None) -> tuple[Coverage, Usage | None]:
        if self.threshold is None:
            return Coverage(1.0, True), None
        score, usage = self.score(question, passages, question_vector)
        return Coverage(round(score, 4), score >= self.threshold), usage
