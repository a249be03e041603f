"""The vectors the extractive answerer scores, computed once at ingest and stored per chunk.

The answerer ranks each sentence of the retrieved chunks by its own vector and by the
vector of the sentence read with the one spoken before it (its *window*). Embedding those
on every question put ~60 texts through the model on the request path, behind the model's
process-wide lock; the embeddings step now embeds them with the chunks and stores them in
the chunk's row (``sentence_vectors``, ``window_vectors`` in ``vectors.py``).

Cost: these are embed-stage tokens like the chunk vectors (the local model records them at
$0 with its real token counts; a cloud embedder bills them). Each distinct sentence and
window of a video is embedded once, however many overlapping chunks hold it, but every
sentence is read three times (alone, and in its own and the next sentence's window) plus
each text's special tokens: on the sample lecture 1,766 tokens beside the chunks' 700, so
precomputing multiplies a video's embed tokens by about 3.5 (``benchmarks/chat_load.py``
prints the factor). The embeddings step makes them only when the chat model is the
extractive one, which alone reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chronos_pipeline.lib.chunking import Chunk
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import Embedder, SentenceVectors

# Texts per embedding call: under the OpenAI API's 2,048 inputs per request.
MAX_TEXTS_PER_CALL = 1024


def window_text(before: str, text: str) -> str:
    """A sentence read together with the sentence spoken just before it."""
    return f"{before} {text}"


def chunk_texts(chunk: Chunk) -> tuple[list[str], list[str]]:
    """A chunk's sentences and their windows, in the order ``SentenceVectors`` keeps."""
    texts = [s.text for s in chunk.sentences]
    return texts, [window_text(texts[i - 1], texts[i]) for i in range(1, len(texts))]


def texts_to_embed(chunks: Sequence[Chunk], with_sentences: bool) -> list[str]:
    """Every input the embeddings step sends for a video's ``chunks``: each chunk's text,
    then (for the extractive answerer) each distinct sentence and window once, as
    ``SentenceEmbedding`` sends them. The budget hold and the re-embedding estimate
    (``costs.estimate_reembed``) both count this list, so neither drifts from the bill."""
    texts = [c.text for c in chunks]
    if with_sentences:
        texts += list(dict.fromkeys(t for c in chunks for part in chunk_texts(c) for t in part))
    return texts


class SentenceEmbedding:
    """Embeds chunks' sentences and windows, each distinct text of a video once."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._known: dict[str, np.ndarray] = {}

    def vectors(self, chunks: Sequence[Chunk]) -> tuple[list[SentenceVectors], list[Usage]]:
        """The chunks' vectors, with one usage per embedding call made (one per batch of
        chunks, unless it holds over ``MAX_TEXTS_PER_CALL`` new texts)."""
        needed: dict[str, None] = {}
        for chunk in chunks:
            sentences, windows = chunk_texts(chunk)
            for text in (*sentences, *windows):
                if text not in self._known:
                    needed[text] = None
        new = list(needed)
        usages = []
        for start in range(0, len(new), MAX_TEXTS_PER_CALL):
            part = new[start : start + MAX_TEXTS_PER_CALL]
            embedded, usage = self.embedder.embed(part)
            usages.append(usage)
            self._known.update(zip(part, np.asarray(embedded, dtype=np.float32), strict=True))
        dimension = self.embedder.dimension
        out = []
        for chunk in chunks:
            sentences, windows = chunk_texts(chunk)
            out.append(SentenceVectors(
                _stack([self._known[t] for t in sentences], dimension),
                _stack([self._known[t] for t in windows], dimension),
            ))
        return out, usages


def _stack(rows: list[np.ndarray], dimension: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.stack(rows).astype(np.float32, copy=False)
