"""Generate the spoken held-out lectures in ``benchmarks/heldout/<name>/``.

Each lecture's ``script.txt`` is spoken sentence by sentence with ``espeak-ng`` in its own
voice and speed (helpers shared with ``scripts/make_sample_lecture.py``), background noise
made with numpy from a fixed seed is mixed in for some, and PyAV encodes the result as a
small AAC mono ``lecture.m4a``. ``timeline.json`` records every sentence's start and end in
the audio, and ``answer_at_s`` in the hand-written ``questions.json`` is re-synced from it
(matched on ``answer_sentence``), as for the sample lecture.

Which lectures are for tuning and which are only reported is fixed here (``LECTURES``) and
documented in ``benchmarks/heldout/README.md``. The output is deterministic: same espeak-ng,
same seeds, same bytes. Nothing downloads; ``espeak-ng`` is only needed to run this.

Usage (from the repository root)::

    .venv/bin/python scripts/make_heldout_lectures.py [NAME ...]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.make_sample_lecture import (
    AAC_FRAME_SAMPLES,
    REPO_ROOT,
    SAMPLE_RATE,
    Int16Array,
    Voice,
    build_audio,
    read_paragraphs,
    refresh_questions,
    require_espeak,
    write_timeline,
)

HELDOUT_DIR = REPO_ROOT / "benchmarks" / "heldout"
AUDIO_BITRATE = 32_000


@dataclass(frozen=True)
class Lecture:
    name: str
    title: str
    split: str  # "tuning" or "report"
    voice: Voice
    noise: str | None = None  # "hum", "fan" or "hiss"
    snr_db: float = 20.0
    seed: int = 0


LECTURES: tuple[Lecture, ...] = (
    Lecture("dictionaries", "Python dictionaries", "tuning", Voice("en-us", 140)),
    Lecture("temperament", "Tuning and temperament", "tuning", Voice("en-gb-x-rp", 130),
            noise="hum", snr_db=18.0, seed=11),
    Lecture("statistics", "Hypothesis testing", "report", Voice("en-gb+f3", 135),
            noise="fan", snr_db=15.0, seed=23),
    Lecture("printing", "The printing press", "report", Voice("en-us+m3", 125)),
    Lecture("crispr", "CRISPR gene editing", "report", Voice("en-gb", 135),
            noise="hiss", snr_db=20.0, seed=37),
    Lecture("git_internals", "Git internals", "report", Voice("en-us+f2", 145),
            noise="fan", snr_db=12.0, seed=41),
)


def noise(kind: str, size: int, seed: int) -> npt.NDArray[np.float64]:
    """Unit-RMS background noise: mains hum with harmonics, a fan's rumble, or tape hiss."""
    rng = np.random.default_rng(seed)
    t = np.arange(size) / SAMPLE_RATE
    if kind == "hum":
        out = sum(np.sin(2 * np.pi * 50.0 * h * t + rng.uniform(0, 2 * np.pi)) / h
                  for h in (1, 2, 3, 5))
        out = np.asarray(out) + 0.3 * rng.standard_normal(size)
    elif kind == "fan":
        # Brown-ish noise (integrated white noise, leaky so it does not drift) plus a whine.
        white = rng.standard_normal(size)
        out = np.empty(size)
        level = 0.0
        for start in range(0, size, 65_536):
            block = white[start:start + 65_536]
            acc = np.empty(block.size)
            for i, x in enumerate(block):
                level = 0.995 * level + x
                acc[i] = level
            out[start:start + block.size] = acc
        out += 0.5 * np.sin(2 * np.pi * 180.0 * t) * out.std()
    elif kind == "hiss":
        out = rng.standard_normal(size)
    else:
        raise ValueError(f"unknown noise {kind!r}")
    out = out - out.mean()
    return np.asarray(out / np.sqrt(np.mean(out**2)), dtype=np.float64)


def mix(speech: Int16Array, kind: str | None, snr_db: float, seed: int) -> Int16Array:
    """Speech with noise at ``snr_db`` below the speech's own RMS (measured where it speaks)."""
    if kind is None:
        return speech
    signal = speech.astype(np.float64)
    voiced = np.abs(signal) > 300
    speech_rms = float(np.sqrt(np.mean(signal[voiced] ** 2))) if voiced.any() else 1.0
    mixed = signal + noise(kind, signal.size, seed) * speech_rms / 10 ** (snr_db / 20)
    return np.asarray(np.clip(mixed, -32768, 32767).round(), dtype=np.int16)


def write_m4a(path: Path, audio: Int16Array) -> None:
    """AAC mono in an MP4 (.m4a) container, no video track."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        if not isinstance(stream, AudioStream):
            raise TypeError("aac did not give an audio stream")
        stream.codec_context.bit_rate = AUDIO_BITRATE
        for pos in range(0, audio.size, AAC_FRAME_SAMPLES):
            chunk = audio[pos:pos + AAC_FRAME_SAMPLES].astype(np.float32) / 32768.0
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp",
                                               layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = pos
            frame.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def make(lecture: Lecture, espeak: str) -> None:
    folder = HELDOUT_DIR / lecture.name
    paragraphs = read_paragraphs(folder / "script.txt")
    audio, timeline = build_audio(paragraphs, lambda _i: lecture.voice, espeak=espeak)
    audio = mix(audio, lecture.noise, lecture.snr_db, lecture.seed)
    out = folder / "lecture.m4a"
    write_m4a(out, audio)
    write_timeline(folder / "timeline.json", timeline)
    refresh_questions(folder / "questions.json", timeline)
    print(f"{lecture.name}: {audio.size / SAMPLE_RATE:.1f} s, {len(timeline)} sentences, "
          f"{out.stat().st_size / 1e6:.2f} MB ({lecture.voice.name} {lecture.voice.speed} wpm, "
          f"noise {lecture.noise or 'none'})", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help="lectures to make (default: all)")
    names = parser.parse_args(argv).names
    espeak = require_espeak()
    for lecture in LECTURES:
        if not names or lecture.name in names:
            make(lecture, espeak)


if __name__ == "__main__":
    main()
