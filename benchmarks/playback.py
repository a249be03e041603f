"""Playback benchmark: our playback step against the ffmpeg command that does the same.

In one session, each side in a child process of its own (so peak RSS is per side):

1. remux — ``make_playback`` on the ~30-minute lecture (H.264/AAC: streams copied into a
   faststart MP4) against ``ffmpeg -i SRC -c copy -movflags +faststart OUT``; best of five.
2. transcode — a 2-minute excerpt re-encoded beforehand (untimed) as a 1280x720, 25 fps
   MPEG-4 part 2 + Opus MKV, a codec pair browsers cannot play, through ``make_playback``
   against ``ffmpeg`` with the same settings (libx264 veryfast CRF 26 at 852x480, keyframe
   every 4 s, AAC 96 kb/s, faststart).

Prints seconds, ratios (ours / ffmpeg) and each side's peak RSS.

Usage: ``python -m benchmarks.playback [LECTURE.mp4]``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.make_long_lecture import DEFAULT_OUTPUT
from benchmarks.make_long_lecture import main as make_long_lecture

EXCERPT_START_S = 600
EXCERPT_S = 120
EXCERPT_SIZE = (1280, 720)
EXCERPT_FPS = 25
REMUX_ROUNDS = 5


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_mb: float


def _run(command: list[str]) -> Measured:
    """Run a child to completion; its wall time and its own peak RSS (from wait4)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    stdout = process.stdout.read().decode() if process.stdout else ""
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed: {stderr.strip()}")
    if stdout.strip().startswith("{"):  # our child reports the step's own time
        elapsed = float(json.loads(stdout)["seconds"])
    return Measured(elapsed, usage.ru_maxrss / 1024)


def ours(source: Path, target: Path) -> Measured:
    return _run([sys.executable, "-m", "benchmarks.playback", "--child", str(source),
                 str(target)])


def ffmpeg_remux(source: Path, target: Path) -> Measured:
    return _run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0:v:0",
                 "-map", "0:a:0", "-c", "copy", "-movflags", "+faststart", str(target)])


def ffmpeg_transcode(source: Path, target: Path) -> Measured:
    from chronos_pipeline.lib.playback import AUDIO_BITRATE, KEYFRAME_EVERY_S, web_size

    width, height = web_size(*EXCERPT_SIZE)
    return _run([
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source),
        "-map", "0:v:0", "-map", "0:a:0",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "26",
        "-g", str(EXCERPT_FPS * KEYFRAME_EVERY_S),
        "-vf", f"scale={width}:{height}:flags=bilinear", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", str(AUDIO_BITRATE), "-movflags", "+faststart", str(target),
    ])


def make_excerpt(source: Path, target: Path) -> None:
    width, height = EXCERPT_SIZE
    subprocess.run([
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", str(EXCERPT_START_S), "-t",
        str(EXCERPT_S), "-i", str(source),
        "-vf", f"scale={width}:{height},fps={EXCERPT_FPS}", "-c:v", "mpeg4", "-q:v", "4",
        "-c:a", "libopus", "-b:a", "64k", str(target),
    ], check=True)


def _describe(path: Path) -> str:
    import av

    with av.open(str(path)) as container:
        streams = ", ".join(
            f"{s.codec_context.name}"
            + (f" {s.codec_context.width}x{s.codec_context.height}" if s.type == "video" else "")
            for s in container.streams)
        seconds = float(container.duration or 0) / av.time_base
    return f"{streams}; {seconds:.1f} s; {path.stat().st_size / 1e6:.1f} MB"


def child(source: Path, target: Path) -> None:
    from chronos_pipeline.lib.playback import make_playback

    started = time.perf_counter()
    report = make_playback(source, target)
    print(json.dumps({"seconds": time.perf_counter() - started, "mode": report.mode}))


def _line(name: str, ours_m: Measured, base: Measured) -> None:
    print(f"{name:<10} ours {ours_m.seconds:7.2f} s  ffmpeg {base.seconds:7.2f} s  "
          f"ratio {ours_m.seconds / base.seconds:5.2f}  |  peak RSS ours "
          f"{ours_m.peak_rss_mb:5.0f} MB, ffmpeg {base.peak_rss_mb:5.0f} MB", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        child(Path(args[1]), Path(args[2]))
        return
    lecture = Path(args[0]) if args else DEFAULT_OUTPUT
    if not lecture.exists():
        print(f"making {lecture} (once; about a minute)", flush=True)
        make_long_lecture([str(lecture)])
    print(f"lecture: {lecture} ({_describe(lecture)})", flush=True)
    with tempfile.TemporaryDirectory(prefix="chronos-bench-playback-") as tmp:
        work = Path(tmp)
        remux_ours, remux_ffmpeg = [], []
        for _ in range(REMUX_ROUNDS):  # alternate, so both see the same page cache
            remux_ours.append(ours(lecture, work / "ours.mp4"))
            remux_ffmpeg.append(ffmpeg_remux(lecture, work / "ffmpeg.mp4"))
        print(f"remux output: ours {_describe(work / 'ours.mp4')}; "
              f"ffmpeg {_describe(work / 'ffmpeg.mp4')}")
        _line("remux", min(remux_ours, key=lambda m: m.seconds),
              min(remux_ffmpeg, key=lambda m: m.seconds))

        excerpt = work / "excerpt.mkv"
        make_excerpt(lecture, excerpt)
        print(f"excerpt: {_describe(excerpt)}", flush=True)
        transcode_ours = ours(excerpt, work / "ours_web.mp4")
        transcode_ffmpeg = ffmpeg_transcode(excerpt, work / "ffmpeg_web.mp4")
        print(f"transcode output: ours {_describe(work / 'ours_web.mp4')}; "
              f"ffmpeg {_describe(work / 'ffmpeg_web.mp4')}")
        _line("transcode", transcode_ours, transcode_ffmpeg)
        print(f"transcode speed: ours {EXCERPT_S / transcode_ours.seconds:.1f}x real time, "
              f"ffmpeg {EXCERPT_S / transcode_ffmpeg.seconds:.1f}x")


if __name__ == "__main__":
    main()
