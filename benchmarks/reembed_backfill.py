"""Re-embedding backfill benchmark: 20 lectures, one video per run against ten per run.

Chronos re-embeds as a backfill of the ``embeddings`` asset whose backfill policy puts ten
videos in a run (``assets/embeddings.py``): a run is a fresh process (Dagster's run worker)
that loads the code and the embedding model once for its ten videos. In one run:

1. 20 short ready lectures (each three of the speech fixtures in another order, ~20 s) are
   uploaded (``Ingest.ingest_file``); the first runs to ``ready`` through the ingest job
   (sensor → ``execute_job``), the other 19, to save minutes that are not measured, through
   the same steps the assets call (``lib/steps.py``: transcribe, chunk, embed; no thumbnail
   or playback file), their partitions added as the sensor adds them. Local Whisper and
   MiniLM, in this process.
2. before batching: the 20 are re-embedded into ``text-embedding-3-small`` (the loopback
   OpenAI server of ``tests/loopback.py`` through the real SDK) with one video per run;
3. after batching: the model's rows of the 20 are deleted and they are re-embedded into it
   again with the ranged runs the backfill daemon makes of the policy (tags
   ``dagster/asset_partition_range_start``/``_end``): two runs of ten.
   Each run is a fresh process executing the ``reembed_videos`` job with Dagster's
   ``execute_job`` on the data directory's instance (the code location's in-process
   executor, as a daemon's run worker does), with the run config a backfill carries
   (``{model, estimate_id}``); runs go one after another, as the embedded default's run
   queue (``max_concurrent_runs: 1``) runs a backfill's.
4. with ``--local``, the same two phases with the local MiniLM as the target (its table
   cleared before each): there the model load, which batching saves, is a real cost (about
   ten more minutes on a loaded 2-core machine, hence not by default).

Before each phase ``estimate_reembed`` makes the estimate the runs carry out. The loopback
bills words + 1 per input while the estimate counts ``cl100k_base`` tokens, so the first
estimate of a model is off; the second is calibrated by what the first one's runs billed.
Since that calibration comes from the very texts it then estimates, its error is ~0 by
construction; the line "calibrated on the other 19 lectures" is the honest figure for a
lecture the calibration has not seen (leave one out over the first estimate's per-video bill).
Prints wall time per lecture before and after and their ratio (with where a run's time goes:
process start and code load, the run, process exit), the run processes' CPU seconds (steadier
than wall time on a shared machine) and their ratio, and each estimate against the billed tokens
(the loopback's own count and ``estimates_against_actual``) with the error in %.

About 6 minutes on a loaded 2-core machine (2 of them making the lectures).

Usage: ``python -m benchmarks.reembed_backfill [--local]``
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

    from chronos_pipeline.lib.services import Services
    from tests.loopback import Loopback

REPO = Path(__file__).resolve().parents[1]
SPEECH_DIR = REPO / "tests" / "fixtures" / "speech"
LECTURES = 20
PER_RUN = 10  # the asset's backfill policy (assets/embeddings.py VIDEOS_PER_RUN)
FIXTURES_PER_LECTURE = 3
OPENAI_TARGET = "text-embedding-3-small"
LOCAL_TARGET = "sentence-transformers/all-MiniLM-L6-v2"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
RUN_TIMEOUT_S = 300.0


# The run process ---------------------------------------------------------------------------


def reembed_job() -> dg.JobDefinition:
    """The re-embedding job exactly as the code location serves it (for ``reconstructable``)."""
    from chronos_pipeline.definitions import defs
    from chronos_pipeline.jobs import reembed_job as job

    return defs.resolve_job_def(job.name)


def execute_run(spec: dict[str, Any]) -> None:
    """One backfill run, in this (fresh) process: what a daemon's run worker does with it."""
    loaded_at = time.time()
    import dagster as dg

    from chronos_pipeline.resources.data import ChronosData
    from chronos_pipeline.runner import run_config

    config = run_config(ChronosData(data_dir=spec["data_dir"]))
    config["ops"] = {"embeddings": {"config": {"model": spec["model"],
                                               "estimate_id": spec["estimate_id"]}}}
    job = dg.reconstructable(reembed_job)
    instance = dg.DagsterInstance.get()
    code_loaded_at = time.time()
    result = dg.execute_job(job, instance, run_config=config, tags=spec["tags"],
                            raise_on_error=False)
    stats = instance.get_run_stats(result.run_id)
    instance.dispose()
    print(json.dumps({"run_id": result.run_id, "success": result.success,
                      "loaded_at": loaded_at, "code_loaded_at": code_loaded_at,
                      "run_start": stats.start_time, "run_end": stats.end_time,
                      "done_at": time.time()}), flush=True)


# The benchmark -----------------------------------------------------------------------------


@dataclass
class RunTiming:
    wall_s: float
    start_s: float  # process launch → the run starts (interpreter, Dagster, code location)
    run_s: float  # the run itself (the step, with its model load and its videos)
    exit_s: float  # the run's end → the process has exited
    cpu_s: float  # CPU seconds of the run process (user + system)


@dataclass
class Phase:
    label: str
    model: str
    per_run: int
    wall_s: float = 0.0
    runs: list[RunTiming] = field(default_factory=list)
    estimate: dict[str, Any] = field(default_factory=dict)
    loopback_billed: int | None = None

    @property
    def per_lecture_s(self) -> float:
        return self.wall_s / LECTURES

    @property
    def until_run_end_s(self) -> float:
        """Per lecture, without the processes' exits: a daemon starts the next queued run
        once a run has ended, while its process may still be exiting."""
        return sum(r.start_s + r.run_s for r in self.runs) / LECTURES

    @property
    def cpu_per_lecture_s(self) -> float:
        return sum(r.cpu_s for r in self.runs) / LECTURES


def make_lectures(folder: Path) -> list[Path]:
    """20 short speech videos, each three fixture recordings in another order."""
    import av
    import numpy as np

    from tests.media import speech_video

    rate = 16000
    recordings = []
    for wav in sorted(SPEECH_DIR.glob("*.wav")):
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        pieces: list[np.ndarray] = []
        with av.open(str(wav)) as source:
            for frame in source.decode(audio=0):
                pieces.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            pieces.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        recordings.append(np.concatenate(pieces))
    pause = np.zeros(rate // 2, dtype=np.int16)
    orders = list(itertools.permutations(range(len(recordings)), FIXTURES_PER_LECTURE))
    step = len(orders) // LECTURES
    lectures = []
    for n, order in enumerate(orders[::step][:LECTURES]):
        samples = np.concatenate([part for i in order for part in (recordings[i], pause)])
        wav_path = folder / f"lecture{n:02d}.wav"
        with wave.open(str(wav_path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(samples.astype(np.int16).tobytes())
        lectures.append(speech_video(wav_path, folder / f"lecture{n:02d}.mp4"))
    return lectures


def ingest_lectures(services: Services, creator_id: str, clips: list[Path]) -> list[str]:
    """The lectures ready; returns the video partition keys in the instance's order."""
    from chronos_pipeline.instance import open_instance
    from chronos_pipeline.lib.catalog import VideoStatus
    from chronos_pipeline.lib.steps import chunk_video, embed_video, transcribe_video
    from chronos_pipeline.partitions import VIDEOS
    from chronos_pipeline.resources.data import ChronosData
    from chronos_pipeline.runner import run_pending

    first, *others = clips
    services.ingest.ingest_file(creator_id, first, title="Lecture 1")
    instance = open_instance(services.settings)
    try:
        outcomes = run_pending(instance, ChronosData(data_dir=str(services.settings.data_dir)))
        if [o.success for o in outcomes] != [True]:
            raise SystemExit(f"the first lecture's ingest run failed: {outcomes}")
        added = []
        for n, clip in enumerate(others, start=2):
            video = services.ingest.ingest_file(creator_id, clip, title=f"Lecture {n}")
            transcribe_video(services, video.id)
            chunk_video(services, video.id)
            embed_video(services, video.id)
            added.append(video.id)
        instance.add_dynamic_partitions(VIDEOS, added)
        # Ranged runs cover the partitions in the order the instance holds them.
        keys = list(instance.get_dynamic_partitions(VIDEOS))
    finally:
        instance.dispose()
    ready = [v.id for v in services.catalog.list_videos(creator_id)
             if v.status is VideoStatus.READY]
    if sorted(ready) != sorted(keys) or len(keys) != len(clips):
        raise SystemExit(f"{len(ready)} of {len(clips)} lectures ready, {len(keys)} partitions")
    return keys


def launch(spec: dict[str, Any], env: dict[str, str]) -> tuple[RunTiming, str]:
    import resource

    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "benchmarks.reembed_backfill", "--execute",
                           json.dumps(spec)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, check=False)
    ended = time.time()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (used.ru_utime - cpu.ru_utime) + (used.ru_stime - cpu.ru_stime)
    reports = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not reports:
        raise SystemExit(f"run process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(reports[-1])
    if not report["success"]:
        raise SystemExit(f"run {report['run_id']} failed:\n{done.stderr[-3000:]}")
    if report["run_start"] is None or report["run_end"] is None:
        raise SystemExit(f"run {report['run_id']} has no start or end time")
    return RunTiming(ended - started, report["run_start"] - started,
                     report["run_end"] - report["run_start"], ended - report["run_end"],
                     cpu_s), str(report["run_id"])


def run_phase(phase: Phase, services: Services, creator_id: str, keys: list[str],
              env: dict[str, str], server: Loopback) -> None:
    from chronos_pipeline.lib.costs import estimate_reembed, estimates_against_actual

    # The target's rows go first: a run naming a model fills only what its table lacks.
    store = services.vectors_for(services.embedder_for(phase.model))
    for key in keys:
        store.delete_video(key)
    estimate = estimate_reembed(services.ledger, services.catalog, services.storage,
                                phase.model, creator_id=creator_id, with_sentences=True)
    backfill_id = f"bench{phase.per_run:02d}{estimate.estimate_id[:8]}"
    billed_before = len(server.billed)
    batches = [keys[i:i + phase.per_run] for i in range(0, len(keys), phase.per_run)]
    started = time.perf_counter()
    for batch in batches:
        tags = {"dagster/backfill": backfill_id}
        if len(batch) == 1:
            tags["dagster/partition"] = batch[0]
        else:
            tags[RANGE_START_TAG], tags[RANGE_END_TAG] = batch[0], batch[-1]
        spec = {"data_dir": str(services.settings.data_dir), "model": phase.model,
                "estimate_id": estimate.estimate_id, "tags": tags}
        timing, _run_id = launch(spec, env)
        phase.runs.append(timing)
    phase.wall_s = time.perf_counter() - started
    missing = [k for k in keys if store.count(k) == 0]
    if missing:
        raise SystemExit(f"{phase.label}: no {phase.model} vectors for {missing}")
    if phase.model == OPENAI_TARGET:
        phase.loopback_billed = sum(b.get("input_token", 0)
                                    for b in server.billed[billed_before:])
    [row] = [r for r in estimates_against_actual(services.ledger).as_dicts()
             if r["estimate_id"] == estimate.estimate_id]
    phase.estimate = {**row, "counted_tokens": estimate.counted_tokens,
                      "calibration_videos": estimate.calibration_videos}


def report(phase: Phase) -> None:
    runs = phase.runs
    start = sum(r.start_s for r in runs) / len(runs)
    run = sum(r.run_s for r in runs) / len(runs)
    ended = sum(r.exit_s for r in runs) / len(runs)
    print(f"  {phase.label}: {len(runs)} run(s) of {phase.per_run}, {phase.wall_s:.1f} s wall, "
          f"{phase.per_lecture_s:.2f} s per lecture ({phase.cpu_per_lecture_s:.2f} CPU s); "
          f"a run: {start:.1f} s process start + code load, {run:.1f} s run, {ended:.1f} s "
          "exit", flush=True)
    e = phase.estimate
    billed = f", loopback billed {phase.loopback_billed}" if phase.loopback_billed is not None \
        else ""
    error = "n/a" if e["error_pct"] is None else f"{float(e['error_pct']):+.2f} %"
    print(f"    estimate {e['estimate_id']}: counted {e['counted_tokens']} tokens "
          f"({e['tokenizer']}) × calibration {float(e['calibration']):.4f} "
          f"(from {e['calibration_videos']} video(s)) = {float(e['estimated_tokens']):.0f}; "
          f"actual {float(e['actual_tokens']):.0f} over {e['runs']} run(s){billed}; "
          f"error {error}", flush=True)


def compare(before: Phase, after: Phase) -> None:
    ratio = before.per_lecture_s / after.per_lecture_s
    cpu_ratio = before.cpu_per_lecture_s / after.cpu_per_lecture_s
    run_ratio = before.until_run_end_s / after.until_run_end_s
    print(f"  per lecture: {before.per_lecture_s:.2f} s before, {after.per_lecture_s:.2f} s "
          f"after batching: before/after {ratio:.2f}x wall ({run_ratio:.2f}x without the "
          f"processes' exits), {cpu_ratio:.2f}x CPU", flush=True)


def held_out_calibration(services: Services, estimate_id: str) -> None:
    """How well a calibration fits a lecture it was not made from: each lecture's count
    scaled by billed / counted over the other 19 (leave one out), against its bill."""
    from chronos_pipeline.lib.costs import estimate_videos_against_actual

    rows = [r for r in estimate_videos_against_actual(services.ledger, estimate_id).as_dicts()
            if r["actual_tokens"]]
    counted = sum(int(r["counted_tokens"]) for r in rows)
    billed = sum(float(r["actual_tokens"]) for r in rows)
    errors = []
    for r in rows:
        ratio = (billed - float(r["actual_tokens"])) / (counted - int(r["counted_tokens"]))
        errors.append(100 * (int(r["counted_tokens"]) * ratio - float(r["actual_tokens"]))
                      / float(r["actual_tokens"]))
    print(f"    calibrated on the other {len(rows) - 1} lectures, one lecture's estimate: "
          f"error {sum(abs(e) for e in errors) / len(errors):.2f} % mean, "
          f"{min(errors):+.2f} % to {max(errors):+.2f} %", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--execute"]:
        execute_run(json.loads(args[1]))
        return
    from chronos_pipeline.instance import prepare_dagster_home
    from chronos_pipeline.lib.services import Services
    from chronos_pipeline.lib.settings import Settings
    from tests.loopback import loopback

    with tempfile.TemporaryDirectory(prefix="chronos-reembed-") as tmp, loopback() as server:
        data_dir = Path(tmp) / "data"
        values = {"CHRONOS_DATA_DIR": str(data_dir), "OPENAI_API_KEY": "sk-test",
                  "CHRONOS_OPENAI_BASE_URL": f"{server.base_url}/v1"}
        os.environ.update(values)
        settings = Settings.from_env()
        services = Services(settings)
        env = {**os.environ, "DAGSTER_HOME": str(prepare_dagster_home(settings)),
               "PYTHONPATH": os.pathsep.join(p for p in (str(REPO),
                                                         os.environ.get("PYTHONPATH")) if p)}
        creator, _key = services.catalog.create_creator("Re-embedding benchmark")
        (Path(tmp) / "clips").mkdir()
        started = time.perf_counter()
        keys = ingest_lectures(services, creator.id, make_lectures(Path(tmp) / "clips"))
        print(f"{LECTURES} lectures ready in {time.perf_counter() - started:.0f} s (local "
              "Whisper + MiniLM in this process; not part of the comparison)", flush=True)
        # A first run process warms the page cache, so the first measured run pays no more.
        subprocess.run([sys.executable, "-c", "import chronos_pipeline.definitions"],
                       env=env, cwd=REPO, check=True)
        targets = [OPENAI_TARGET, LOCAL_TARGET] if "--local" in args else [OPENAI_TARGET]
        for model in targets:
            print(f"target {model}:", flush=True)
            before = Phase("before batching", model, 1)
            run_phase(before, services, creator.id, keys, env, server)
            report(before)
            if model == OPENAI_TARGET:
                held_out_calibration(services, before.estimate["estimate_id"])
            after = Phase("after batching ", model, PER_RUN)
            run_phase(after, services, creator.id, keys, env, server)
            report(after)
            compare(before, after)
        services.close()


if __name__ == "__main__":
    main()
