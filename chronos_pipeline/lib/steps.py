"""The pipeline's four steps as plain functions: probe, transcribe, chunk, embed.

The Dagster assets are thin wrappers over these. Each step moves the video's status
forward, records every provider call on the ledger the moment it returns, and writes its
product to storage under the video's folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chronos_pipeline.lib.catalog import Video, VideoStatus
from chronos_pipeline.lib.chunking import Chunk, chunk_transcript
from chronos_pipeline.lib.errors import MediaError, NoSpeechError, UnsupportedMediaError
from chronos_pipeline.lib.ledger import CostSummary, Usage
from chronos_pipeline.lib.media import probe, thumbnail_jpeg
from chronos_pipeline.lib.providers.base import ProgressCallback
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.transcripts import Transcript

TRANSCRIPT = "transcript.json"
CHUNKS = "chunks.json"
THUMBNAIL = "thumbnail.jpg"
EMBED_BATCH = 64

Log = Callable[[str], None]


@dataclass
class StepResult:
    """What a step reports: its metadata for the Dagster UI and its spend."""

    metadata: dict[str, Any] = field(default_factory=dict)
    costs: CostSummary = field(default_factory=CostSummary)


def probe_video(services: Services, video_id: str) -> StepResult:
    """Re-check the stored source and make its thumbnail."""
    video = services.catalog.find_video(video_id)
    source = services.storage.require_source(video.creator_id, video_id)
    try:
        facts = probe(source)
    except UnsupportedMediaError as exc:
        raise MediaError(exc.message) from exc
    thumbnail = thumbnail_jpeg(source)
    if thumbnail is not None:
        services.storage.write_bytes(video.creator_id, video_id, THUMBNAIL, thumbnail)
    return StepResult(
        metadata={
            "title": video.title,
            "creator_id": video.creator_id,
            "container": facts.container,
            "duration_s": facts.duration_s,
            "size_bytes": source.stat().st_size,
            "audio_codec": facts.audio_codec,
            "audio_sample_rate": facts.audio_sample_rate,
            "video_codec": facts.video_codec or "none",
            "resolution": f"{facts.width}x{facts.height}" if facts.has_video else "audio only",
            "thumbnail": THUMBNAIL if thumbnail is not None else "none",
        }
    )


def transcribe_video(
    services: Services, video_id: str, *, run_id: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[Transcript, StepResult]:
    video = _advance(services, video_id, VideoStatus.TRANSCRIBING)
    services.budgets.enforce(video.creator_id)
    source = services.storage.require_source(video.creator_id, video_id)
    transcriber = services.transcriber
    result = StepResult()

    def record(usage: Usage) -> None:
        result.costs.add(services.ledger.record(
            usage, creator_id=video.creator_id, stage="transcribe", video_id=video_id,
            run_id=run_id,
        ))

    transcript, _total = transcriber.transcribe(source, on_progress=on_progress,
                                                on_usage=record)
    services.budgets.record_alerts(video.creator_id)
    if not transcript.segments:
        raise NoSpeechError(
            "no speech was found in this video's audio; check that the lecture's sound track "
            "was uploaded and is not silent"
        )
    services.storage.write_json(video.creator_id, video_id, TRANSCRIPT,
                                transcript.to_json(video_id))
    result.metadata = {
        "model": transcript.model,
        "language": transcript.language,
        "duration_s": transcript.duration_s,
        "segments": len(transcript.segments),
        "words": transcript.word_count,
    }
    return transcript, result


def load_transcript(services: Services, video: Video) -> Transcript:
    return Transcript.from_json(services.storage.read_json(video.creator_id, video.id, TRANSCRIPT))


def chunk_video(services: Services, video_id: str) -> tuple[list[Chunk], StepResult]:
    video = _advance(services, video_id, VideoStatus.CHUNKING)
    transcript = load_transcript(services, video)
    settings = services.settings
    chunks = chunk_transcript(transcript, target_words=settings.chunk_words,
                              overlap_words=settings.chunk_overlap_words)
    services.storage.write_json(video.creator_id, video_id, CHUNKS,
                                [c.to_json() for c in chunks])
    words = [c.word_count for c in chunks]
    return chunks, StepResult(
        metadata={
            "chunks": len(chunks),
            "target_words": settings.chunk_words,
            "overlap_words": settings.chunk_overlap_words,
            "mean_words": round(sum(words) / len(words), 1) if words else 0,
            "max_words": max(words, default=0),
        }
    )


def load_chunks(services: Services, video: Video) -> list[Chunk]:
    data = services.storage.read_json(video.creator_id, video.id, CHUNKS)
    return [Chunk.from_json(c) for c in data]


def embed_video(
    services: Services, video_id: str, *, run_id: str | None = None, log: Log | None = None
) -> StepResult:
    import numpy as np

    video = _advance(services, video_id, VideoStatus.EMBEDDING)
    chunks = load_chunks(services, video)
    embedder = services.embedder
    result = StepResult()
    batches = []
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start : start + EMBED_BATCH]
        services.budgets.enforce(video.creator_id)
        vectors, usage = embedder.embed([c.text for c in batch])
        result.costs.add(services.ledger.record(
            usage, creator_id=video.creator_id, stage="embed", video_id=video_id, run_id=run_id
        ))
        batches.append(vectors)
        if log is not None:
            log(f"embedded {min(start + EMBED_BATCH, len(chunks))}/{len(chunks)} chunks")
    vectors = np.concatenate(batches) if batches else np.zeros((0, embedder.dimension))
    stored = services.vectors.replace_video(
        creator_id=video.creator_id, video_id=video_id, course_id=video.course_id,
        chunks=chunks, vectors=vectors,
    )
    services.budgets.record_alerts(video.creator_id)
    services.catalog.set_status(video_id, VideoStatus.READY)
    result.metadata = {
        "embedding_model": embedder.model_id,
        "dimension": embedder.dimension,
        "vectors": stored,
        "table": services.vectors.name,
    }
    return result


def fail_video(services: Services, video_id: str, message: str) -> None:
    services.catalog.set_status(video_id, VideoStatus.FAILED, message)


def _advance(services: Services, video_id: str, status: VideoStatus) -> Video:
    video = services.catalog.find_video(video_id)
    if video.status is not status:
        video = services.catalog.set_status(video_id, status)
    return video
