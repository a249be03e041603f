"""Ingest benchmark: the whole pipeline against raw faster-whisper + raw sentence-transformers.

On a ~30-minute lecture (made by ``benchmarks/make_long_lecture.py``), in one process:

1. baseline — faster-whisper on the file with the pipeline's settings (tiny.en, int8, beam
   5, VAD, word timestamps), then sentence-transformers on ~120-word groups of its text;
2. pipeline — ``Ingest.ingest_file`` (copy + PyAV probe) → sensor tick → the Dagster job
   in-process on a SQLite instance (probe, thumbnail, transcript, chunks, LanceDB), until
   the video is ``ready``.

Models are loaded and warmed before either is timed, so both pay the same. Prints wall
times, real-time factors and the pipeline/baseline ratio (target ≤ 1.15).

Usage: ``python -m benchmarks.ingest [LECTURE.mp4]``
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.make_long_lecture import DEFAULT_OUTPUT
from benchmarks.make_long_lecture import main as make_long_lecture

TARGET_RATIO = 1.15


def baseline(path: Path, beam_size: int, threads: int) -> tuple[float, int]:
    from chronos_pipeline.lib.providers.local_embedder import _load as load_embedder
    from chronos_pipeline.lib.providers.local_whisper import _load as load_whisper
    from chronos_pipeline.lib.providers.local_whisper import model_path

    whisper = load_whisper(str(model_path()), threads)
    embedder = load_embedder(threads)
    started = time.perf_counter()
    segments, _info = whisper.transcribe(str(path), language="en", beam_size=beam_size,
                                         vad_filter=True, word_timestamps=True)
    words = " ".join(s.text for s in segments).split()
    groups = [" ".join(words[i : i + 120]) for i in range(0, len(words), 90)]
    embedder.encode(groups, batch_size=16, normalize_embeddings=True,
                    show_progress_bar=False)
    return time.perf_counter() - started, len(groups)


def pipeline(path: Path, data_dir: Path) -> tuple[float, int]:
    from chronos_pipeline.instance import open_instance
    from chronos_pipeline.lib.catalog import VideoStatus
    from chronos_pipeline.lib.services import Services
    from chronos_pipeline.lib.settings import Settings
    from chronos_pipeline.resources.data import ChronosData
    from chronos_pipeline.runner import run_pending

    settings = Settings.from_env({"CHRONOS_DATA_DIR": str(data_dir)})
    services = Services(settings)
    creator, _ = services.catalog.create_creator("Benchmark")
    instance = open_instance(settings)
    started = time.perf_counter()
    video = services.ingest.ingest_file(creator.id, path, title="Benchmark lecture")
    outcomes = run_pending(instance, ChronosData(data_dir=str(data_dir)))
    elapsed = time.perf_counter() - started
    final = services.catalog.find_video(video.id)
    if final.status is not VideoStatus.READY or not all(o.success for o in outcomes):
        raise SystemExit(f"pipeline failed: {final.error_message}")
    vectors = services.vectors.count(video.id)
    instance.dispose()
    services.close()
    return elapsed, vectors


def warm_up(beam_size: int, threads: int) -> None:
    from chronos_pipeline.lib.providers.local_embedder import LocalEmbedder
    from chronos_pipeline.lib.providers.local_whisper import LocalWhisperTranscriber

    clip = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "speech" / "jfk.wav"
    LocalWhisperTranscriber(beam_size=beam_size, threads=threads).transcribe(clip)
    LocalEmbedder(threads=threads).embed(["warm up the embedder"] * 16)


def main(argv: list[str] | None = None) -> None:
    import av

    args = sys.argv[1:] if argv is None else argv
    lecture = Path(args[0]) if args else DEFAULT_OUTPUT
    if not lecture.exists():
        print(f"making {lecture} (once; about a minute)", flush=True)
        make_long_lecture([str(lecture)])
    with av.open(str(lecture)) as container:
        audio_s = float(container.duration or 0) / av.time_base
    beam_size, threads = 5, 2
    print(f"lecture: {lecture} ({audio_s / 60:.1f} min)", flush=True)
    warm_up(beam_size, threads)
    raw_s, groups = baseline(lecture, beam_size, threads)
    print(f"baseline (raw faster-whisper + sentence-transformers): {raw_s:.1f} s, "
          f"{audio_s / raw_s:.1f}x real time, {groups} text groups", flush=True)
    with tempfile.TemporaryDirectory(prefix="chronos-bench-") as tmp:
        pipe_s, vectors = pipeline(lecture, Path(tmp) / "data")
    print(f"pipeline (upload → sensor → Dagster assets → LanceDB):  {pipe_s:.1f} s, "
          f"{audio_s / pipe_s:.1f}x real time, {vectors} vectors")
    ratio = pipe_s / raw_s
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"ratio pipeline/raw: {ratio:.3f} ({verdict} the ≤ {TARGET_RATIO} target)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the benchmark process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
