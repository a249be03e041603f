"""Re-embedding a creator's lectures with another model, and the moment chat switches.

A re-embedding writes the new model's vectors into that model's own table while chat keeps
searching the old one. After each lecture, ``switch_when_complete`` looks whether every
ready lecture of the creator now has vectors of the new model matching its chunks; only then
does the creator's chat switch to it, at once. No search ever mixes two models.
"""

from __future__ import annotations

from dataclasses import dataclass

from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.providers.base import Embedder
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import load_chunks


@dataclass(frozen=True)
class Coverage:
    """How many of the creator's ready lectures have vectors of a model."""

    model: str
    done: int
    total: int
    switched: bool

    @property
    def complete(self) -> bool:
        return self.done == self.total


def model_coverage(services: Services, creator_id: str, embedder: Embedder,
                   *, with_sentences: bool) -> tuple[int, int]:
    """(lectures with vectors of ``embedder``'s model matching their chunks, ready lectures)."""
    store = services.vectors_for(embedder)
    ready = [v for v in services.catalog.list_videos(creator_id)
             if v.status is VideoStatus.READY]
    done = sum(
        1 for v in ready
        if store.holds(v.id, load_chunks(services, v), course_id=v.course_id,
                       sentence_vectors=with_sentences)
    )
    return done, len(ready)


def switch_when_complete(services: Services, creator_id: str, embedder: Embedder,
                         *, with_sentences: bool) -> Coverage:
    """Switch the creator's chat to ``embedder``'s model if every ready lecture has it."""
    current, _ = services.search_model(creator_id)
    if current.model_id == embedder.model_id:
        return Coverage(embedder.model_id, 0, 0, switched=False)
    done, total = model_coverage(services, creator_id, embedder, with_sentences=with_sentences)
    switched = total > 0 and done == total
    if switched:
        services.catalog.set_embedding_model(creator_id, embedder.model_id)
    return Coverage(embedder.model_id, done, total, switched)


def embedded_in_run(ledger: Ledger, run_id: str, video_id: str) -> bool:
    """Whether this run already paid to embed the video (a retried step of a batch must not
    pay again for the videos it finished)."""
    _, rows = ledger.query(
        "SELECT count(*) FROM cost_records WHERE stage = 'embed' AND run_id = ? "
        "AND video_id = ?", [run_id, video_id])
    return bool(rows and rows[0][0])
