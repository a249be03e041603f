"""Transcription with OpenAI's Whisper API (``whisper-1``) through the ``openai`` SDK.

The API takes files up to 25 MB, so the audio is cut into MP3 pieces at silences
(``audio_pieces``), the pieces are transcribed concurrently (bounded), and their segments
and words are shifted by each piece's offset into one transcript on the video's clock.
Each piece is one billed call, recorded through ``on_usage`` as soon as it returns, priced
by the audio seconds the API reports (``usage.seconds``, else its ``duration``).
"""

from __future__ import annotations

import bisect
import math
import threading
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import httpx2
import openai

from chronos_pipeline.lib.audio_pieces import AudioPiece, pieces
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import ProgressCallback, Transcriber, UsageCallback
from chronos_pipeline.lib.providers.provider_errors import translate
from chronos_pipeline.lib.transcripts import Segment, Transcript, Word

# Only whisper-1 returns segment and word timestamps (verbose_json), which citations need.
TIMESTAMPED_MODELS = ("whisper-1",)


def stitch(piece: AudioPiece, reply: Any) -> list[Segment]:
    """The piece's segments on the video's clock, each with the words that fall inside it."""
    words = [Word(str(w.word).strip(), round(piece.offset_s + float(w.start), 3),
                  round(piece.offset_s + float(w.end), 3))
             for w in (getattr(reply, "words", None) or []) if str(w.word).strip()]
    raw_segments = [
        (round(piece.offset_s + float(r.start), 3), round(piece.offset_s + float(r.end), 3),
         str(r.text).strip())
        for r in getattr(reply, "segments", None) or []
    ]
    raw_segments = [r for r in raw_segments if r[2]]
    if not raw_segments:
        return []
    # Each word belongs to exactly one segment: the last one starting at or before it.
    starts = [start for start, _, _ in raw_segments]
    owned: list[list[Word]] = [[] for _ in raw_segments]
    for word in words:
        at = bisect.bisect_right(starts, word.start_s + 0.01) - 1
        owned[max(at, 0)].append(word)
    return [Segment(start, end, text, owned[i])
            for i, (start, end, text) in enumerate(raw_segments)]


class OpenAITranscriber(Transcriber):
    provider = "openai"

    def __init__(self, *, api_key: str, model: str = "whisper-1", base_url: str | None = None,
                 max_piece_bytes: int = 24 * 1024 * 1024, concurrency: int = 3,
                 timeout_s: float = 300.0, max_retries: int = 3) -> None:
        self.model_id = model
        self.max_piece_bytes = max_piece_bytes
        self.concurrency = concurrency
        self._client: Any = openai.OpenAI(api_key=api_key, base_url=base_url,
                                          timeout=timeout_s, max_retries=max_retries)

    def _transcribe_piece(self, piece: AudioPiece, stop: threading.Event) -> tuple[Any, Usage]:
        if stop.is_set():
            raise CancelledError  # an earlier piece failed: spend nothing more
        try:
            return self._call(piece)
        except ChronosError:
            stop.set()
            raise

    def _call(self, piece: AudioPiece) -> tuple[Any, Usage]:
        try:
            reply = self._client.audio.transcriptions.create(
                model=self.model_id,
                file=(f"piece-{piece.index:04d}.mp3", piece.data, "audio/mpeg"),
                response_format="verbose_json",
                timestamp_granularities=["segment", "word"],
                language="en",
            )
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise translate("OpenAI transcription", exc) from exc
        billed = getattr(getattr(reply, "usage", None), "seconds", None)
        seconds = float(billed) if billed is not None else float(
            getattr(reply, "duration", None) or piece.duration_s)
        return reply, Usage(self.provider, self.model_id, {"audio_second": seconds},
                            estimated=billed is None)

    def expected_usage(self, duration_s: float) -> Usage:
        # Each piece may bill a little more than its share of the audio (the MP3 encoder's
        # padding, whole seconds): a second per started minute covers both.
        seconds = math.ceil(duration_s) + math.ceil(duration_s / 60)
        return Usage(self.provider, self.model_id, {"audio_second": seconds}, estimated=True)

    def transcribe(
        self, media: Path, *, on_progress: ProgressCallback | None = None,
        on_usage: UsageCallback | None = None,
    ) -> tuple[Transcript, Usage]:
        parts = pieces(media, max_bytes=self.max_piece_bytes)
        total_s = sum(p.duration_s for p in parts)
        replies: dict[int, Any] = {}
        billed = 0.0
        estimated = False
        done_s = 0.0
        failure: ChronosError | None = None
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._transcribe_piece, p, stop): p for p in parts}
            for future in as_completed(futures):
                piece = futures[future]
                try:
                    reply, usage = future.result()
                except CancelledError:
                    continue
                except ChronosError as exc:
                    # Stop spending: pieces not started yet are skipped; pieces already
                    # in flight finish and are still recorded.
                    failure = failure or exc
                    continue
                replies[piece.index] = reply
                billed += usage.quantities["audio_second"]
                estimated = estimated or usage.estimated
                done_s += piece.duration_s
                if on_usage is not None:
                    on_usage(usage)
                if on_progress is not None:
                    on_progress(done_s, total_s)
        if failure is not None:
            raise failure
        segments = [s for p in parts for s in stitch(p, replies[p.index])]
        language = str(getattr(replies[parts[0].index], "language", "en") or "en")
        transcript = Transcript(language="en" if language == "english" else language,
                                duration_s=round(total_s, 3), segments=segments,
                                model=self.model_id)
        return transcript, Usage(self.provider, self.model_id, {"audio_second": billed},
                                 estimated=estimated)
