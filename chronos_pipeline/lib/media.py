"""What a media file is, decided by probing it with PyAV, never by its name.

A file is a usable lecture when FFmpeg can open it as one of the containers we accept, it
has an audio stream, and that audio runs (almost) as long as the container says: a
"faststart" MP4 cut in half opens fine and reports its full duration, so the audio packets
are walked to the end and compared.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
from av.audio.resampler import AudioResampler

from chronos_pipeline.lib.errors import UnsupportedMediaError, ValidationError

# FFmpeg demuxer names (as PyAV reports them) of the containers we accept, and the
# extension each one is stored under.
ACCEPTED_FORMATS: dict[str, str] = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "mkv",
    "avi": "avi",
}
ACCEPTED_DESCRIPTION = "mp4, mov, webm, mkv or avi"
# How much shorter the audio may be than the stated duration before we call it truncated:
# encoders pad and trim a little, a lost tail is far more.
TRUNCATION_TOLERANCE_S = 2.0
TRUNCATION_TOLERANCE_RATIO = 0.02


@dataclass(frozen=True)
class MediaFacts:
    container: str
    extension: str
    duration_s: float
    audio_codec: str
    audio_sample_rate: int
    audio_channels: int
    has_video: bool
    width: int | None
    height: int | None
    video_codec: str | None


def probe(path: Path, *, min_duration_s: float = 0.0) -> MediaFacts:
    """Open ``path`` as a video with sound and check that it is whole.

    Raises ``UnsupportedMediaError`` (a client error) with a reason a creator can act on,
    and ``ValidationError`` for a lecture shorter than ``min_duration_s``.
    """
    try:
        container = av.open(str(path), mode="r")
    except (av.error.InvalidDataError, av.error.FFmpegError, OSError) as exc:
        raise UnsupportedMediaError(
            f"this file is not a video we can read ({ACCEPTED_DESCRIPTION} expected): "
            f"{_reason(exc)}"
        ) from exc
    with container:
        fmt = container.format.name
        if fmt not in ACCEPTED_FORMATS:
            raise UnsupportedMediaError(
                f"unsupported container {fmt!r}; upload {ACCEPTED_DESCRIPTION}"
            )
        if not container.streams.audio:
            raise UnsupportedMediaError(
                "the video has no audio track, so there is nothing to transcribe"
            )
        audio = container.streams.audio[0]
        video = container.streams.video[0] if container.streams.video else None
        stated = _stated_duration(container, audio)
        audio_end = _audio_end(container, audio)
    if audio_end <= 0:
        raise UnsupportedMediaError("the audio track is empty")
    if stated is None:
        stated = audio_end
    missing = stated - audio_end
    if missing > max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_RATIO * stated):
        raise UnsupportedMediaError(
            f"the file looks truncated: it says it lasts {stated:.1f} s but its audio "
            f"stops at {audio_end:.1f} s; upload the complete file"
        )
    duration_s = round(min(stated, audio_end) if missing > 0 else stated, 3)
    if duration_s < min_duration_s:
        raise ValidationError(
            f"the video is {round(duration_s, 2):g} s long; lectures must be at least "
            f"{min_duration_s:g} s"
        )
    return MediaFacts(
        container=fmt,
        extension=ACCEPTED_FORMATS[fmt],
        duration_s=duration_s,
        audio_codec=audio.codec_context.name,
        audio_sample_rate=int(audio.codec_context.sample_rate or 0),
        audio_channels=int(audio.codec_context.channels or 0),
        has_video=video is not None,
        width=int(video.codec_context.width) if video is not None else None,
        height=int(video.codec_context.height) if video is not None else None,
        video_codec=video.codec_context.name if video is not None else None,
    )


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _stated_duration(container: av.container.InputContainer, audio: av.AudioStream) -> float | None:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    if audio.duration is not None and audio.time_base is not None:
        return float(audio.duration * audio.time_base)
    return None


def _audio_end(container: av.container.InputContainer, audio: av.AudioStream) -> float:
    """The end time of the last audio packet that can actually be read."""
    end = 0.0
    time_base = audio.time_base
    if time_base is None:
        return 0.0
    try:
        for packet in container.demux(audio):
            if packet.pts is None or packet.size == 0:
                continue
            packet_end = float((packet.pts + (packet.duration or 0)) * time_base)
            end = max(end, packet_end)
    except (av.error.InvalidDataError, av.error.FFmpegError, EOFError):
        # A damaged tail: what was read so far is what exists.
        pass
    start = float(audio.start_time * time_base) if audio.start_time is not None else 0.0
    return end - start


def decode_mono_16k(path: Path) -> np.ndarray:
    """The whole audio track as 16 kHz mono float32 (what Whisper and VAD expect)."""
    resampler = AudioResampler(format="flt", layout="mono", rate=16000)
    pieces: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                pieces.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            pieces.append(out.to_ndarray().reshape(-1))
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(pieces).astype(np.float32, copy=False)


def thumbnail_jpeg(path: Path, at_fraction: float = 0.1, max_width: int = 640) -> bytes | None:
    """A JPEG of the frame near ``at_fraction`` of the video, or None if there is no picture."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        duration = (container.duration or 0) / av.time_base
        target = duration * at_fraction
        if target > 0 and stream.time_base is not None:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            image = frame.to_image()  # type: ignore[no-untyped-call]
            if image.width > max_width:
                height = round(image.height * max_width / image.width)
                image = image.resize((max_width, height))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
            return buffer.getvalue()
    return None


