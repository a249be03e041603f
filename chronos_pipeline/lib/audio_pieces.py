"""Cutting a lecture's audio into compressed pieces under an upload limit, at silences.

Cloud transcription APIs take files up to 25 MB. The audio is decoded to 16 kHz mono,
cut near every ``max_seconds`` at the quietest 100 ms in the preceding ``search_s``
seconds (a pause between sentences, not the middle of a word), and each piece is encoded
as mono MP3. Each piece keeps its offset so the provider's times can be shifted back onto
the video's clock.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from chronos_pipeline.lib.errors import MediaError
from chronos_pipeline.lib.media import decode_mono_16k

RATE = 16000
FRAME = RATE // 10  # 100 ms energy frames


@dataclass(frozen=True)
class AudioPiece:
    index: int
    offset_s: float
    duration_s: float
    data: bytes  # MP3


def cut_points(samples: np.ndarray, max_seconds: float, search_s: float = 30.0) -> list[int]:
    """Sample indices where pieces start: 0, then a quiet spot before each limit."""
    total = len(samples)
    limit = int(max_seconds * RATE)
    frames = total // FRAME
    energy = (np.square(samples[: frames * FRAME].reshape(frames, FRAME))).mean(axis=1)
    starts = [0]
    while total - starts[-1] > limit:
        end = starts[-1] + limit
        lo = max(starts[-1] + limit // 2, end - int(search_s * RATE))
        first, last = lo // FRAME, end // FRAME
        if last > first:
            window = energy[first:last]
            # The latest of the quietest frames: pieces as long as the limit allows.
            quietest = first + int(np.flatnonzero(window <= window.min() * 1.05 + 1e-9)[-1])
        else:
            quietest = last
        starts.append(max(quietest * FRAME, starts[-1] + FRAME))
    return starts


def encode_mp3(samples: np.ndarray, bitrate: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=RATE)
        stream.layout = "mono"
        stream.bit_rate = bitrate
        step = 1152 * 4
        for start in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(
                samples[start : start + step].reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def pieces(media: Path, *, max_bytes: int = 24 * 1024 * 1024,
           bitrate: int = 32_000) -> list[AudioPiece]:
    """The media's audio as MP3 pieces, each under ``max_bytes``."""
    samples = decode_mono_16k(media)
    if samples.size == 0:
        raise MediaError("the video's audio track is empty")
    # Leave 10 % for the container and the encoder's variation.
    max_seconds = max_bytes * 8 * 0.9 / bitrate
    starts = cut_points(samples, max_seconds)
    bounds = [*starts, len(samples)]
    out = []
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        data = encode_mp3(samples[start:end], bitrate)
        if len(data) > max_bytes:
            raise MediaError(f"audio piece {index} came out at {len(data)} bytes, over the "
                             f"{max_bytes}-byte limit")
        out.append(AudioPiece(index, start / RATE, (end - start) / RATE, data))
    return out
