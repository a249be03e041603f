"""Many uploads at once: six lectures through a real Dagster daemon, with the instance's
run-queue and pool limits, against the same six one run at a time.

Two creators upload three generated lectures each (about 2.5 minutes of espeak-ng speech
apiece, made once into ``data/bench/simultaneous/``). Each phase gets a fresh data
directory, uploads all six at once, starts ``dagster-daemon run`` (the upload sensor, the
queued run coordinator, the default run launcher) and waits until every lecture is ready:

1. sequential — the old embedded default, ``max_concurrent_runs: 1`` (no pools needed);
2. simultaneous — the shipped ``dagster_home/dagster.yaml`` (3 runs, 2 per creator, the
   transcription and embedding pools sized to the machine).

Prints each phase's wall time (first upload to the last lecture ready), when each creator's
first lecture was ready, the ratio, and peak memory: the sampled sum of RSS over the
daemon's run processes (and over the whole process group: daemon, code server, runs).

Usage: ``python -m benchmarks.simultaneous_uploads``
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.make_sample_lecture import (
    REPO_ROOT,
    SAMPLE_RATE,
    SCRIPT_PATH,
    Voice,
    build_audio,
    mux_mp4,
    read_paragraphs,
    require_espeak,
    slides_from_timeline,
    verify_mp4,
)

LECTURES = 6
CREATORS = 2
LECTURE_S = 150.0
FOLDER = REPO_ROOT / "data" / "bench" / "simultaneous"
VOICES = (Voice("en-us", 150), Voice("en-gb", 160), Voice("en-us+f3", 140),
          Voice("en-gb-x-rp", 170), Voice("en-us+m3", 155), Voice("en-gb+f2", 145))
SAMPLE_EVERY_S = 0.5
TIMEOUT_S = 3600.0
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(message: str) -> None:
    print(message, flush=True)


def make_lectures() -> list[Path]:
    """Six different lectures: the sample script from a different paragraph and voice each."""
    paragraphs = read_paragraphs(SCRIPT_PATH)
    espeak = require_espeak()
    FOLDER.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(LECTURES):
        path = FOLDER / f"lecture{n}.mp4"
        paths.append(path)
        if path.exists():
            continue
        log(f"making {path} (once)")
        order = itertools.cycle(paragraphs[n % len(paragraphs):] + paragraphs[:n % len(paragraphs)])
        audio, timeline = build_audio(order, lambda i, n=n: VOICES[(n + i) % len(VOICES)],
                                      espeak=espeak, min_duration_s=LECTURE_S)
        total_s = audio.size / SAMPLE_RATE
        mux_mp4(path, audio, slides_from_timeline(timeline, total_s, caption=f"Lecture {n}"))
        verify_mp4(path, total_s)
    return paths


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0


def _group(pgid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live process in the process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        members.append((int(entry), command))
    return members


class MemorySampler:
    """Samples the summed RSS of a process group until stopped; keeps the peaks."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.peak_runs = 0
        self.peak_group = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            runs = group = 0
            for pid, command in _group(self.pgid):
                rss = _rss(pid)
                group += rss
                # Everything but the daemon and its code server: run workers, step workers.
                if "dagster-daemon" not in command and " api grpc" not in command:
                    runs += rss
            self.peak_runs = max(self.peak_runs, runs)
            self.peak_group = max(self.peak_group, group)
            self._stop.wait(SAMPLE_EVERY_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Phase:
    name: str
    wall_s: float
    first_ready_s: dict[str, float]
    peak_runs_mb: float
    peak_group_mb: float


def run_phase(name: str, lectures: list[Path], data_dir: Path, *, one_at_a_time: bool) -> Phase:
    import dagster as dg

    from chronos_pipeline.instance import open_instance, prepare_dagster_home
    from chronos_pipeline.lib.catalog import VideoStatus
    from chronos_pipeline.lib.services import Services
    from chronos_pipeline.lib.settings import Settings
    from tests.servers import dagster_daemon

    settings = Settings.from_env({**os.environ, "CHRONOS_DATA_DIR": str(data_dir)})
    services = Services(settings)
    home = prepare_dagster_home(settings)
    if one_at_a_time:
        yaml = home / "dagster.yaml"
        text = yaml.read_text()
        assert "max_concurrent_runs: 3" in text, "the template changed; update the benchmark"
        yaml.write_text(text.replace("max_concurrent_runs: 3", "max_concurrent_runs: 1"))
        instance = dg.DagsterInstance.from_config(str(home))
    else:
        instance = open_instance(settings)
    creators = [services.catalog.create_creator(f"Creator {c}")[0].id for c in range(CREATORS)]
    per_creator = LECTURES // CREATORS
    started = time.perf_counter()
    owner = {}
    for n, path in enumerate(lectures):
        creator_id = creators[n // per_creator]
        owner[services.ingest.ingest_file(creator_id, path, title=f"Lecture {n}").id] = creator_id
    env = {"DAGSTER_HOME": str(home), "CHRONOS_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    first_ready: dict[str, float] = {}
    with dagster_daemon(env, data_dir.parent / f"{name}-daemon.log") as daemon:
        sampler = MemorySampler(daemon.pid)
        try:
            while True:
                statuses = {v: services.catalog.find_video(v).status for v in owner}
                now = time.perf_counter() - started
                for video_id, status in statuses.items():
                    if status is VideoStatus.READY:
                        first_ready.setdefault(owner[video_id], now)
                if all(s in (VideoStatus.READY, VideoStatus.FAILED) for s in statuses.values()):
                    break
                if daemon.poll() is not None or now > TIMEOUT_S:
                    raise SystemExit(f"{name}: the daemon stopped or timed out: {statuses}")
                time.sleep(1.0)
        finally:
            sampler.stop()
    wall_s = time.perf_counter() - started
    failed = [v for v, s in statuses.items() if s is not VideoStatus.READY]
    if failed:
        raise SystemExit(f"{name}: lectures failed: {failed}")
    instance.dispose()
    services.close()
    labels = {c: f"creator {i + 1}" for i, c in enumerate(creators)}
    return Phase(name, wall_s, {labels[c]: s for c, s in first_ready.items()},
                 sampler.peak_runs / 2**20, sampler.peak_group / 2**20)


def main() -> None:
    lectures = make_lectures()
    import av

    seconds = 0.0
    for path in lectures:
        with av.open(str(path)) as container:
            seconds += float(container.duration or 0) / av.time_base
    log(f"{LECTURES} lectures, {seconds / 60:.1f} min of audio, {CREATORS} creators uploading "
        f"{LECTURES // CREATORS} each; {os.cpu_count()} cores")
    phases = []
    with tempfile.TemporaryDirectory(prefix="chronos-bench-") as tmp:
        for name, one_at_a_time in (("sequential", True), ("simultaneous", False)):
            phase = run_phase(name, lectures, Path(tmp) / name / "data",
                              one_at_a_time=one_at_a_time)
            phases.append(phase)
            firsts = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(phase.first_ready_s.items()))
            log(f"{name:>12}: {phase.wall_s:7.1f} s wall ({seconds / phase.wall_s:.1f}x real "
                f"time); first lecture ready: {firsts}; peak RSS of run processes "
                f"{phase.peak_runs_mb:.0f} MB (whole daemon group {phase.peak_group_mb:.0f} MB)")
    sequential, simultaneous = phases
    log(f"ratio simultaneous/sequential wall time: {simultaneous.wall_s / sequential.wall_s:.3f}")
    log(f"ratio simultaneous/sequential peak run RSS: "
        f"{simultaneous.peak_runs_mb / sequential.peak_runs_mb:.2f}")


if __name__ == "__main__":
    main()
