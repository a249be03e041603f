"""The pipeline's four steps as plain functions: probe, transcribe, chunk, embed.

The Dagster assets are thin wrappers over these. Each step moves the video's status
forward, reserves its expected cost against the creator's hard limit before its first
provider request (refused: ``BudgetExceededError``, terminal), records every provider call
on the ledger the moment it returns, and writes its product to storage under the video's
folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chronos_pipeline.lib.catalog import Video, VideoStatus
from chronos_pipeline.lib.chunking import CHUNKS_FILE, Chunk, chunk_transcript, read_chunks
from chronos_pipeline.lib.errors import (
    MediaError,
    NoSpeechError,
    PipelineStateError,
    UnsupportedMediaError,
)
from chronos_pipeline.lib.ledger import CostSummary, Usage
from chronos_pipeline.lib.media import probe, thumbnail_jpeg
from chronos_pipeline.lib.providers.base import ProgressCallback, SentenceVectors
from chronos_pipeline.lib.sentence_vectors import SentenceEmbedding, texts_to_embed
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.transcripts import Transcript

TRANSCRIPT = "transcript.json"
CHUNKS = CHUNKS_FILE
THUMBNAIL = "thumbnail.jpg"
EMBED_BATCH = 64
# The library page polls the catalog; a write every couple of seconds is plenty.
PROGRESS_EVERY_S = 2.0

Log = Callable[[str], None]
Clock = Callable[[], float]


class ProgressWriter:
    """Persists a stage's share done and the time left, at most every ``every_s`` seconds
    (and always at 100 %). The time left extrapolates the elapsed time linearly."""

    def __init__(self, services: Services, video_id: str, *, every_s: float = PROGRESS_EVERY_S,
                 clock: Clock = time.monotonic) -> None:
        self.services = services
        self.video_id = video_id
        self.every_s = every_s
        self.clock = clock
        self.started = clock()
        self.last_written: float | None = None

    def __call__(self, done: float, total: float) -> None:
        share = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
        now = self.clock()
        finished = share >= 1.0
        if (not finished and self.last_written is not None
                and now - self.last_written < self.every_s):
            return
        elapsed = now - self.started
        eta = 0.0 if finished else (elapsed * (1.0 - share) / share if share > 0 else None)
        self.services.catalog.set_progress(self.video_id, share,
                                           None if eta is None else round(eta, 1))
        self.last_written = now


@dataclass
class StepResult:
    """What a step reports: its metadata for the Dagster UI and its spend."""

    metadata: dict[str, Any] = field(default_factory=dict)
    costs: CostSummary = field(default_factory=CostSummary)


def probe_video(services: Services, video_id: str) -> StepResult:
    """Re-check the stored source and make its thumbnail."""
    video = services.catalog.find_video(video_id)
    _require_not_deleted(video)
    source = services.storage.require_source(video.creator_id, video_id)
    try:
        facts = probe(source)
    except UnsupportedMediaError as exc:
        raise MediaError(exc.message) from exc
    thumbnail = thumbnail_jpeg(source)
    if thumbnail is not None:
        services.storage.write_bytes(video.creator_id, video_id, THUMBNAIL, thumbnail,
                                     create_folder=False)
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
    """Transcribe the source, or reuse the transcript this model already made of it (a
    retry after a later stage failed must not pay for the audio again)."""
    video = _advance(services, video_id, VideoStatus.TRANSCRIBING)
    transcriber = services.transcriber
    result = StepResult()
    earlier = _earlier_transcript(services, video, transcriber.model_id)
    if earlier is not None:
        services.catalog.set_progress(video_id, 1.0, 0.0)
        if on_progress is not None:
            on_progress(earlier.duration_s, earlier.duration_s)
        transcript = earlier
    else:
        source = services.storage.require_source(video.creator_id, video_id)
        # Refused before any request when the whole audio would pass the hard limit.
        reservation = services.budgets.reserve(
            video.creator_id, [transcriber.expected_usage(video.duration_s or
                                                          probe(source).duration_s)],
            stage="transcribe", ref=video_id)
        persist = ProgressWriter(services, video_id)

        def progress(done: float, total: float) -> None:
            persist(done, total)
            if on_progress is not None:
                on_progress(done, total)

        def record(usage: Usage) -> None:
            result.costs.add(services.ledger.record(
                usage, creator_id=video.creator_id, stage="transcribe", video_id=video_id,
                run_id=run_id,
            ))

        with reservation:
            transcript, _total = transcriber.transcribe(source, on_progress=progress,
                                                        on_usage=record)
        services.budgets.record_alerts(video.creator_id)
    if not transcript.segments:
        raise NoSpeechError(
            "no speech was found in this video's audio; check that the lecture's sound track "
            "was uploaded and is not silent"
        )
    if earlier is None:
        services.storage.write_json(video.creator_id, video_id, TRANSCRIPT,
                                    transcript.to_json(video_id), create_folder=False)
    result.metadata = {
        "model": transcript.model,
        "language": transcript.language,
        "duration_s": transcript.duration_s,
        "segments": len(transcript.segments),
        "words": transcript.word_count,
        "reused": earlier is not None,
    }
    return transcript, result


def _earlier_transcript(services: Services, video: Video, model_id: str) -> Transcript | None:
    path = services.storage.video_dir(video.creator_id, video.id) / TRANSCRIPT
    if not path.is_file():
        return None
    try:
        transcript = load_transcript(services, video)
    except (ValueError, KeyError, TypeError):
        return None
    return transcript if transcript.model == model_id and transcript.segments else None


def load_transcript(services: Services, video: Video) -> Transcript:
    return Transcript.from_json(services.storage.read_json(video.creator_id, video.id, TRANSCRIPT))


def chunk_video(services: Services, video_id: str) -> tuple[list[Chunk], StepResult]:
    video = _advance(services, video_id, VideoStatus.CHUNKING)
    transcript = load_transcript(services, video)
    settings = services.settings
    chunks = chunk_transcript(transcript, target_words=settings.chunk_words,
                              overlap_words=settings.chunk_overlap_words)
    services.storage.write_json(video.creator_id, video_id, CHUNKS,
                                [c.to_json() for c in chunks], create_folder=False)
    services.catalog.set_progress(video_id, 1.0, 0.0)
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
    return read_chunks(services.storage, video.creator_id, video.id)


def embeds_sentences(services: Services) -> bool:
    """Whether the embeddings step also embeds the extractive answerer's sentences and
    windows (only that chat model reads them, so with another they are not paid for)."""
    return services.settings.chat_model == "local"


def embed_video(
    services: Services, video_id: str, *, run_id: str | None = None, log: Log | None = None,
    force: bool = False, with_sentences: bool | None = None,
) -> StepResult:
    """Embed the video's chunks into the table of ``services.embedder``'s model; skipped
    (nothing paid) when the table already holds exactly these chunks, unless ``force`` (an
    explicit re-embed). A ready lecture (a re-embedding) stays ready throughout: chat goes
    on answering from the model it searches. ``with_sentences``: also the extractive
    answerer's sentence vectors (by default when the configured chat model is local)."""
    import numpy as np

    video = services.catalog.find_video(video_id)
    reembedding = video.status is VideoStatus.READY
    if not reembedding:
        video = _advance(services, video_id, VideoStatus.EMBEDDING)
    chunks = load_chunks(services, video)
    embedder = services.embedder
    result = StepResult()
    if with_sentences is None:
        with_sentences = embeds_sentences(services)
    if not force and services.vectors.holds(video_id, chunks, course_id=video.course_id,
                                            sentence_vectors=with_sentences):
        if log is not None:
            log(f"{len(chunks)} vectors of {embedder.model_id} already match the chunks; "
                "not embedding again (tag the run chronos/reembed=true to force it)")
        if not reembedding:
            services.catalog.set_progress(video_id, 1.0, 0.0)
            services.catalog.set_status(video_id, VideoStatus.READY)
        result.metadata = {
            "embedding_model": embedder.model_id,
            "dimension": embedder.dimension,
            "vectors": len(chunks),
            "table": services.vectors.name,
            "reused": True,
        }
        return result
    batches = []
    # The extractive answerer's sentence vectors, made here so that answering does not;
    # another chat model never reads them, so with one they are not paid for.
    sentence_embedding = SentenceEmbedding(embedder) if with_sentences else None
    sentence_vectors: list[SentenceVectors] = []
    # A batch is seconds of work; a ready lecture shows no progress (it is not busy).
    persist: Callable[[float, float], None] = (
        ProgressWriter(services, video_id, every_s=0.0) if not reembedding
        else (lambda done, total: None))
    # Everything this step will embed (chunks, and the answerer's distinct sentences and
    # windows) is held at once: a step refused halfway would lose the batches paid for.
    texts = texts_to_embed(chunks, with_sentences)
    with services.budgets.reserve(video.creator_id, [embedder.expected_usage(texts)],
                                  stage="embed", ref=video_id):
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start : start + EMBED_BATCH]
            vectors, usage = embedder.embed([c.text for c in batch])
            usages = [usage]
            if sentence_embedding is not None:
                made, sentence_usages = sentence_embedding.vectors(batch)
                sentence_vectors.extend(made)
                usages.extend(sentence_usages)
            for spent in usages:
                result.costs.add(services.ledger.record(
                    spent, creator_id=video.creator_id, stage="embed", video_id=video_id,
                    run_id=run_id,
                ))
            batches.append(vectors)
            persist(min(start + EMBED_BATCH, len(chunks)), len(chunks))
            if log is not None:
                log(f"embedded {min(start + EMBED_BATCH, len(chunks))}/{len(chunks)} chunks")
    vectors = np.concatenate(batches) if batches else np.zeros((0, embedder.dimension))
    stored = services.vectors.replace_video(
        creator_id=video.creator_id, video_id=video_id, course_id=video.course_id,
        chunks=chunks, vectors=vectors,
        sentence_vectors=sentence_vectors if sentence_embedding is not None else None,
    )
    # Hybrid retrieval's full-text index: made once, then this video's rows folded in.
    services.vectors.refresh_text_index()
    services.budgets.record_alerts(video.creator_id)
    if reembedding:
        services.catalog.set_notice(video_id, None)  # an earlier failed attempt is mended
    else:
        services.catalog.set_status(video_id, VideoStatus.READY)
    result.metadata = {
        "embedding_model": embedder.model_id,
        "dimension": embedder.dimension,
        "vectors": stored,
        "table": services.vectors.name,
        "sentence_vectors": sum(len(v.sentences) + len(v.windows) for v in sentence_vectors),
        "reused": False,
    }
    return result


def fail_video(services: Services, video_id: str, message: str) -> None:
    """A step failed: the lecture is failed with the reason, unless it is ready (a
    re-embedding failed) — then it keeps serving chat from what it has, with a notice."""
    status = services.catalog.find_video(video_id).status
    if status is VideoStatus.DELETED:
        return  # nobody is waiting for it any more
    if status is VideoStatus.READY:
        services.catalog.set_notice(video_id, f"{message} (chat still answers from the "
                                              "vectors it had)")
        return
    services.catalog.set_status(video_id, VideoStatus.FAILED, message)


def _require_not_deleted(video: Video) -> None:
    if video.status is VideoStatus.DELETED:
        raise PipelineStateError(f"lecture {video.id} was deleted; nothing to do")


def _advance(services: Services, video_id: str, status: VideoStatus) -> Video:
    """Enter a stage: its status, and no progress from an earlier attempt."""
    video = services.catalog.find_video(video_id)
    _require_not_deleted(video)
    if video.status is not status:
        video = services.catalog.set_status(video_id, status)
    else:
        services.catalog.set_progress(video_id, None)
    return video
