"""Generate a ~30-minute lecture MP4 for the ingest benchmark.

The sample lecture script (``samples/lecture/script.txt``) is spoken over and over, each
paragraph with a different espeak-ng voice and speaking rate, until the audio is at least
30 minutes long. Synthesis and muxing are shared with ``scripts/make_sample_lecture.py``, so
the result has the same format as the shipped sample (AAC mono + small H.264 slide video).
A ``<name>.timeline.json`` with every sentence's start/end time is written next to the MP4.

Usage (from the repository root; takes a minute or two)::

    .venv/bin/python benchmarks/make_long_lecture.py [OUTPUT.mp4]

The default output is ``data/bench/lecture_30min.mp4`` (``data/`` is git-ignored). Writing
into ``samples/`` is refused: the benchmark file is far too large to ship.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.make_sample_lecture import (
    REPO_ROOT,
    SAMPLE_RATE,
    SCRIPT_PATH,
    TITLE,
    Voice,
    build_audio,
    mux_mp4,
    read_paragraphs,
    require_espeak,
    slides_from_timeline,
    verify_mp4,
    write_timeline,
)

DEFAULT_OUTPUT = REPO_ROOT / "data" / "bench" / "lecture_30min.mp4"
MIN_DURATION_S = 1800.0

# Seven voices for six paragraphs: every paragraph is heard in several voices across rounds.
VOICES: tuple[Voice, ...] = (
    Voice("en-us", 150),
    Voice("en-gb", 160),
    Voice("en-us+f3", 140),
    Voice("en-gb-x-rp", 170),
    Voice("en-us+m3", 155),
    Voice("en-gb+f2", 145),
    Voice("en-us", 165),
)


def log(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "output",
        nargs="?",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"output MP4 path (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})",
    )
    output: Path = parser.parse_args(argv).output.resolve()
    if output.is_relative_to(REPO_ROOT / "samples"):
        parser.error("refusing to write the benchmark lecture into samples/")
    if output.suffix.lower() != ".mp4":
        parser.error("output must be an .mp4 file")
    return output


def main(argv: list[str] | None = None) -> None:
    output = parse_args(argv)
    espeak = require_espeak()
    paragraphs = read_paragraphs(SCRIPT_PATH)
    started = time.monotonic()

    log(f"synthesizing until >= {MIN_DURATION_S:.0f} s of speech ...")
    audio, timeline = build_audio(
        itertools.cycle(paragraphs),
        lambda i: VOICES[i % len(VOICES)],
        espeak=espeak,
        min_duration_s=MIN_DURATION_S,
        progress=log,
    )
    total_s = audio.size / SAMPLE_RATE
    log(f"synthesis done: {total_s:.1f} s of audio in {time.monotonic() - started:.1f} s")

    slides = slides_from_timeline(timeline, total_s, caption=f"{TITLE} (benchmark)")
    log(f"muxing {output} ...")
    mux_mp4(output, audio, slides, progress=log)
    write_timeline(output.with_suffix(".timeline.json"), timeline)
    duration = verify_mp4(output, total_s)

    elapsed = time.monotonic() - started
    size_mb = output.stat().st_size / 1_000_000
    log(f"wrote {output}: {size_mb:.1f} MB, {duration:.1f} s ({duration / 60:.1f} min)")
    log(f"total generation time {elapsed:.1f} s")


if __name__ == "__main__":
    main()
