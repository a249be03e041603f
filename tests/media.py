"""Test media made with PyAV: short videos with a tone, with silence, or with no sound."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16000


def make_video(
    path: Path,
    *,
    seconds: float = 3.0,
    audio: str | None = "tone",
    container: str = "mp4",
    video_codec: str = "h264",
    audio_codec: str = "aac",
) -> Path:
    """Write a small video; ``audio`` is "tone", "silence" or None (no audio stream)."""
    fmt = {"mp4": "mp4", "mkv": "matroska", "avi": "avi", "mov": "mov", "webm": "webm"}[container]
    with av.open(str(path), mode="w", format=fmt) as out:
        vstream = out.add_stream(video_codec, rate=5)
        vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        astream = None
        if audio is not None:
            astream = out.add_stream(audio_codec, rate=SAMPLE_RATE)
            astream.layout = "mono"
        for i in range(int(seconds * 5)):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), (i * 20) % 255, dtype=np.uint8), format="rgb24"
            )
            for packet in vstream.encode(frame):
                out.mux(packet)
        for packet in vstream.encode():
            out.mux(packet)
        if astream is not None:
            t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
            samples = (
                0.3 * np.sin(2 * np.pi * 440 * t) if audio == "tone" else np.zeros_like(t)
            ).astype(np.float32)
            step = 1024
            for start in range(0, len(samples), step):
                piece = samples[start : start + step].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
                frame.sample_rate = SAMPLE_RATE
                frame.pts = start
                frame.time_base = Fraction(1, SAMPLE_RATE)
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def truncated_copy(source: Path, target: Path, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def faststart_copy(source: Path, target: Path) -> Path:
    """Remux ``source`` with its index (moov) first, as web encoders write MP4s."""
    with av.open(str(source)) as src, av.open(
        str(target), mode="w", format="mp4", options={"movflags": "faststart"}
    ) as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    return target


def speech_video(wav: Path, target: Path) -> Path:
    """Mux a WAV recording into a small MP4 (AAC audio plus a still picture)."""
    with av.open(str(wav)) as src, av.open(str(target), mode="w", format="mp4") as out:
        rate = src.streams.audio[0].codec_context.sample_rate
        astream = out.add_stream("aac", rate=rate)
        astream.layout = "mono"
        vstream = out.add_stream("h264", rate=1)
        vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        duration = float(src.duration or 0) / av.time_base
        for i in range(max(1, int(duration) + 1)):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in vstream.encode(frame):
                out.mux(packet)
        for packet in vstream.encode():
            out.mux(packet)
        for frame in src.decode(audio=0):
            frame.pts = None
            for packet in astream.encode(frame):
                out.mux(packet)
        for packet in astream.encode():
            out.mux(packet)
    return target


def repeated_wav(source: Path, target: Path, times: int) -> Path:
    """``source`` played ``times`` times over: a longer real recording."""
    with wave.open(str(source)) as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    with wave.open(str(target), "wb") as out:
        out.setparams(params)
        out.writeframes(frames * times)
    return target
