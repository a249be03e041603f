"""Generate the sample lecture that ships in ``samples/lecture/``.

The lecture text in ``samples/lecture/script.txt`` is spoken sentence by sentence with the
``espeak-ng`` command-line synthesizer, the resulting WAV files are concatenated with short
pauses, and the audio is muxed with PyAV into an MP4 together with a tiny slide-show video
track (one solid-colour slide per paragraph). A ``timeline.json`` records where every sentence
starts and ends in the final audio; ``answer_at_s`` in the hand-written ``questions.json`` is
re-synced from it (matched on ``answer_sentence``) on every run.

``espeak-ng`` is only needed to run this generator; nothing at test or demo time calls it.

Usage (from the repository root)::

    .venv/bin/python scripts/make_sample_lecture.py

The synthesis and muxing helpers are reused by ``benchmarks/make_long_lecture.py``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.video.stream import VideoStream
from PIL import Image, ImageDraw, ImageFont

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "samples" / "lecture"
SCRIPT_PATH = SAMPLE_DIR / "script.txt"
TITLE = "Momentum indicators: moving averages and RSI"

SAMPLE_RATE = 22_050  # espeak-ng's native output rate, so no resampling is needed
LEADING_SILENCE_S = 2.0
SENTENCE_GAP_S = 0.5
PARAGRAPH_GAP_S = 1.5
TRAILING_SILENCE_S = 1.0
AUDIO_BITRATE = 48_000
AAC_FRAME_SAMPLES = 1024

VIDEO_WIDTH = 320
VIDEO_HEIGHT = 180
VIDEO_FPS = 2
VIDEO_GOP = 20  # one keyframe every 10 s keeps seeking cheap
SILENCE_THRESHOLD = 300  # int16 amplitude treated as silence when trimming espeak output

SLIDE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (32, 64, 128),
    (24, 110, 90),
    (120, 60, 120),
    (150, 90, 30),
    (40, 100, 140),
    (130, 40, 50),
    (70, 70, 70),
)

Int16Array = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice name (``-v``) and speaking rate in words per minute (``-s``)."""

    name: str = "en-us"
    speed: int = 150


@dataclass(frozen=True)
class TimelineEntry:
    """Where one spoken sentence sits in the final audio (1-based paragraph/sentence)."""

    paragraph: int
    sentence: int
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Slide:
    """A span of the video showing one paragraph's slide."""

    start_s: float
    end_s: float
    number: int
    caption: str


def read_paragraphs(path: Path) -> list[list[str]]:
    """Read a script: paragraphs separated by blank lines, split into sentences."""
    text = path.read_text(encoding="utf-8")
    paragraphs: list[list[str]] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        flat = " ".join(block.split())
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", flat) if s.strip()]
        if sentences:
            paragraphs.append(sentences)
    return paragraphs


def require_espeak() -> str:
    """Return the path of the espeak-ng binary or exit with a helpful message."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        sys.exit("espeak-ng not found on PATH (Debian: apt-get install espeak-ng)")
    return exe


def synthesize(sentence: str, voice: Voice, workdir: Path, espeak: str = "espeak-ng") -> Int16Array:
    """Speak one sentence with espeak-ng and return trimmed mono int16 samples at SAMPLE_RATE."""
    wav_path = workdir / "out.wav"
    subprocess.run(
        [espeak, "-v", voice.name, "-s", str(voice.speed), "-w", str(wav_path), sentence],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with wave.open(str(wav_path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise RuntimeError(f"unexpected WAV format from espeak-ng: {wav.getparams()}")
        if wav.getframerate() != SAMPLE_RATE:
            raise RuntimeError(f"espeak-ng produced {wav.getframerate()} Hz, not {SAMPLE_RATE}")
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
    return trim_silence(samples)


def trim_silence(samples: Int16Array, margin_s: float = 0.02) -> Int16Array:
    """Drop leading/trailing near-silence so timeline times mark actual speech."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return samples
    margin = int(margin_s * SAMPLE_RATE)
    start = max(0, int(loud[0]) - margin)
    end = min(samples.size, int(loud[-1]) + margin + 1)
    return samples[start:end]


def silence(seconds: float) -> Int16Array:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def build_audio(
    paragraphs: Iterable[Sequence[str]],
    voice_for: Callable[[int], Voice],
    *,
    espeak: str = "espeak-ng",
    min_duration_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Int16Array, list[TimelineEntry]]:
    """Synthesize paragraphs and join them with pauses.

    ``voice_for(i)`` picks the voice for 0-based paragraph ``i``. If ``min_duration_s`` is
    given, synthesis stops after the first paragraph that brings the audio to at least that
    length (so ``paragraphs`` may be an endless iterator). Returns the samples (leading silence
    included, trailing silence padded to a whole video frame) and a timeline of every sentence.
    """
    chunks: list[Int16Array] = [silence(LEADING_SILENCE_S)]
    position = chunks[0].size
    timeline: list[TimelineEntry] = []
    with tempfile.TemporaryDirectory(prefix="chronos-tts-") as tmp:
        workdir = Path(tmp)
        for p_idx, sentences in enumerate(paragraphs):
            voice = voice_for(p_idx)
            if p_idx > 0:
                gap = silence(PARAGRAPH_GAP_S)
                chunks.append(gap)
                position += gap.size
            for s_idx, sentence in enumerate(sentences):
                if s_idx > 0:
                    gap = silence(SENTENCE_GAP_S)
                    chunks.append(gap)
                    position += gap.size
                speech = synthesize(sentence, voice, workdir, espeak)
                timeline.append(
                    TimelineEntry(
                        paragraph=p_idx + 1,
                        sentence=s_idx + 1,
                        start_s=round(position / SAMPLE_RATE, 3),
                        end_s=round((position + speech.size) / SAMPLE_RATE, 3),
                        text=sentence,
                    )
                )
                chunks.append(speech)
                position += speech.size
            if progress is not None:
                progress(
                    f"paragraph {p_idx + 1} ({voice.name}, {voice.speed} wpm): "
                    f"audio now {position / SAMPLE_RATE:.1f} s"
                )
            if min_duration_s is not None and position >= min_duration_s * SAMPLE_RATE:
                break
    # Pad so the audio covers a whole number of video frames: both tracks then end together.
    samples_per_frame = SAMPLE_RATE // VIDEO_FPS
    total = position + round(TRAILING_SILENCE_S * SAMPLE_RATE)
    total = math.ceil(total / samples_per_frame) * samples_per_frame
    chunks.append(np.zeros(total - position, dtype=np.int16))
    return np.concatenate(chunks), timeline


def slides_from_timeline(
    timeline: Sequence[TimelineEntry], total_s: float, caption: str = TITLE
) -> list[Slide]:
    """One slide per paragraph; each slide starts with the paragraph's first sentence."""
    starts: dict[int, float] = {}
    for entry in timeline:
        starts.setdefault(entry.paragraph, entry.start_s)
    numbers = sorted(starts)
    slides: list[Slide] = []
    for i, number in enumerate(numbers):
        start = 0.0 if i == 0 else starts[number]
        end = starts[numbers[i + 1]] if i + 1 < len(numbers) else total_s
        slides.append(Slide(start_s=start, end_s=end, number=number, caption=caption))
    return slides


def render_slide(number: int, caption: str) -> npt.NDArray[np.uint8]:
    """A solid-colour RGB slide with the caption and part number drawn on it."""
    colour = SLIDE_COLOURS[(number - 1) % len(SLIDE_COLOURS)]
    image = Image.new("RGB", (VIDEO_WIDTH, VIDEO_HEIGHT), colour)
    draw = ImageDraw.Draw(image)
    big = ImageFont.load_default(size=36)
    small = ImageFont.load_default(size=13)
    draw.text((VIDEO_WIDTH // 2, 70), f"Part {number}", fill="white", font=big, anchor="mm")
    draw.text((VIDEO_WIDTH // 2, 130), caption[:48], fill=(230, 230, 230), font=small, anchor="mm")
    return np.asarray(image, dtype=np.uint8)


def _video_encoder() -> str:
    for name in ("h264", "libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        return name
    raise RuntimeError("PyAV has neither an H.264 nor an MPEG-4 encoder")


def mux_mp4(
    out_path: Path,
    audio: Int16Array,
    slides: Sequence[Slide],
    *,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Write ``audio`` (mono int16 at SAMPLE_RATE) plus a slide-show video track to an MP4.

    ``len(audio)`` must be a whole number of video frames (``build_audio`` guarantees it).
    """
    samples_per_frame = SAMPLE_RATE // VIDEO_FPS
    if audio.size % samples_per_frame:
        raise ValueError("audio length must be a whole number of video frames")
    n_frames = audio.size // samples_per_frame
    out_path.parent.mkdir(parents=True, exist_ok=True)

    encoder = _video_encoder()
    frame_cache: dict[int, av.VideoFrame] = {}

    with av.open(str(out_path), mode="w", format="mp4") as container:
        vstream = container.add_stream(encoder, rate=VIDEO_FPS)
        if not isinstance(vstream, VideoStream):
            raise TypeError(f"{encoder} did not give a video stream")
        vstream.width = VIDEO_WIDTH
        vstream.height = VIDEO_HEIGHT
        vstream.pix_fmt = "yuv420p"
        vstream.codec_context.gop_size = VIDEO_GOP
        if encoder in ("h264", "libx264"):
            vstream.codec_context.options = {"preset": "medium", "crf": "30", "tune": "stillimage"}
        else:
            vstream.codec_context.bit_rate = 100_000

        astream = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        if not isinstance(astream, AudioStream):
            raise TypeError("aac did not give an audio stream")
        astream.codec_context.bit_rate = AUDIO_BITRATE

        audio_pos = 0
        slide_idx = 0
        report_every = 60 * VIDEO_FPS
        for frame_idx in range(n_frames):
            t = frame_idx / VIDEO_FPS
            while slide_idx + 1 < len(slides) and t >= slides[slide_idx + 1].start_s:
                slide_idx += 1
            slide = slides[slide_idx]
            if slide.number not in frame_cache:
                rgb = render_slide(slide.number, slide.caption)
                frame_cache[slide.number] = av.VideoFrame.from_ndarray(
                    rgb, format="rgb24"
                ).reformat(format="yuv420p")
            vframe = frame_cache[slide.number]
            vframe.pts = frame_idx
            vframe.time_base = Fraction(1, VIDEO_FPS)
            container.mux(vstream.encode(vframe))

            # Audio up to the end of this video frame, in AAC-sized frames.
            audio_end = (frame_idx + 1) * samples_per_frame
            while audio_pos < audio_end:
                n = min(AAC_FRAME_SAMPLES, audio_end - audio_pos)
                chunk = audio[audio_pos : audio_pos + n].astype(np.float32) / 32768.0
                aframe = av.AudioFrame.from_ndarray(
                    chunk.reshape(1, -1),
                    format="fltp",
                    layout="mono",
                )
                aframe.sample_rate = SAMPLE_RATE
                aframe.pts = audio_pos
                aframe.time_base = Fraction(1, SAMPLE_RATE)
                container.mux(astream.encode(aframe))
                audio_pos += n
            if progress is not None and (frame_idx + 1) % report_every == 0:
                progress(f"muxed {t + 1 / VIDEO_FPS:.0f}/{n_frames / VIDEO_FPS:.0f} s")

        container.mux(vstream.encode(None))
        container.mux(astream.encode(None))


def verify_mp4(path: Path, expected_s: float, tolerance_s: float = 0.5) -> float:
    """Check the MP4 opens with PyAV, has one audio and one video stream and the right length.

    Returns the container duration in seconds.
    """
    with av.open(str(path)) as container:
        n_audio = len(container.streams.audio)
        n_video = len(container.streams.video)
        if (n_audio, n_video) != (1, 1):
            raise RuntimeError(
                f"{path}: expected 1 audio + 1 video stream, got {n_audio} + {n_video}"
            )
        if container.duration is None:
            raise RuntimeError(f"{path}: container reports no duration")
        duration = container.duration / 1_000_000
    if abs(duration - expected_s) > tolerance_s:
        raise RuntimeError(f"{path}: duration {duration:.2f} s, audio is {expected_s:.2f} s")
    return duration


def write_timeline(path: Path, timeline: Sequence[TimelineEntry]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = [asdict(entry) for entry in timeline]
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def refresh_questions(path: Path, timeline: Sequence[TimelineEntry]) -> None:
    """Re-sync ``answer_at_s`` in questions.json with a freshly generated timeline.

    Each question is matched to its timeline entry by ``answer_sentence``; a question whose
    sentence no longer occurs exactly once in the script is an error (edit it by hand).
    """
    if not path.exists():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    for question in data["questions"]:
        if question.get("off_topic"):
            continue  # no moment in the lecture answers it
        matches = [e for e in timeline if e.text == question["answer_sentence"]]
        if len(matches) != 1:
            raise RuntimeError(
                f"{path}: answer sentence found {len(matches)} times in the timeline: "
                f"{question['answer_sentence']!r}"
            )
        question["answer_at_s"] = matches[0].start_s
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    espeak = require_espeak()
    paragraphs = read_paragraphs(SCRIPT_PATH)
    voice = Voice("en-us", 150)
    audio, timeline = build_audio(paragraphs, lambda _i: voice, espeak=espeak, progress=print)
    total_s = audio.size / SAMPLE_RATE
    slides = slides_from_timeline(timeline, total_s)
    out_mp4 = SAMPLE_DIR / "lecture.mp4"
    mux_mp4(out_mp4, audio, slides)
    write_timeline(SAMPLE_DIR / "timeline.json", timeline)
    refresh_questions(SAMPLE_DIR / "questions.json", timeline)
    duration = verify_mp4(out_mp4, total_s)
    size_mb = out_mp4.stat().st_size / 1_000_000
    print(f"wrote {out_mp4} ({size_mb:.2f} MB, {duration:.2f} s), timeline.json, questions.json")


if __name__ == "__main__":
    main()
