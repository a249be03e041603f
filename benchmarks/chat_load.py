"""Chat under a class's load: time to the first SSE event and to ``done``, 1 and 20 clients.

Two real ``chronos serve`` processes answer from the same ready sample lecture:

- **stored**: the library as ingest makes it now, with each chunk's sentence and window
  vectors in LanceDB, so answering embeds only the question;
- **on request** (the baseline): a copy whose table has those columns dropped, as a table
  written before they existed, so the answerer embeds ~60 sentences and windows per
  question behind the process-wide model lock (what every answer did before).

In each round both servers get, in alternating order, ``--single`` sequential questions
and then ``--clients`` concurrent ones (threads with streaming httpx, started together).
Reported per server: P50/P95 of time to first event (TTFE) and to ``done``, answers per
second under concurrency, and the baseline/stored ratios. It also prints what storing the
sentence vectors costs at ingest: extra embedding tokens (a multiple of the chunk tokens;
billed with a cloud embedder) and embedding time.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.chat_load [--rounds 3] [--clients 20] [--single 5]
        [--data-dir READY_DATA_DIR] [--also GIT_REV]

Without ``--data-dir`` it ingests ``samples/lecture/lecture.mp4`` first (about a minute).
``--also`` adds a third server running the code of another revision (``git archive``) on
its own copy of the library without sentence vectors: e.g. the commit before they were
stored, to time exactly what answering did then.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import lancedb

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.sentence_vectors import SentenceEmbedding
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.steps import load_chunks
from chronos_pipeline.lib.vectors import SENTENCE_COLUMNS
from tests.servers import free_port, running

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "samples" / "lecture"
STORED, ON_REQUEST = "stored", "on request"
TIMEOUT_S = 300.0


@dataclass
class Timings:
    ttfe: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    answers_per_s: list[float] = field(default_factory=list)
    failures: int = 0


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ask(base: str, key: str, question: str) -> tuple[float, float, bool]:
    """Seconds to the first SSE event and to the end of the stream; whether it ended done."""
    began = time.perf_counter()
    first: float | None = None
    last = ""
    with httpx.stream("POST", f"{base}/chat", json={"question": question},
                      headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT_S) as reply:
        for line in reply.iter_lines():
            if line.startswith("event:"):
                first = first if first is not None else time.perf_counter() - began
                last = line.removeprefix("event:").strip()
    ended = time.perf_counter() - began
    ok = reply.status_code == 200 and last == "done"
    return (first if first is not None else ended), ended, ok


def concurrent(base: str, key: str, questions: Sequence[str], into: Timings) -> None:
    start = threading.Barrier(len(questions))

    def one(question: str) -> tuple[float, float, bool]:
        start.wait()
        return ask(base, key, question)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(questions)) as pool:
        results = list(pool.map(one, questions))
    wall = time.perf_counter() - began
    for ttfe, done, ok in results:
        into.ttfe.append(ttfe)
        into.done.append(done)
        into.failures += not ok
    into.answers_per_s.append(len(questions) / wall)


def sequential(base: str, key: str, questions: Sequence[str], into: Timings) -> None:
    for question in questions:
        ttfe, done, ok = ask(base, key, question)
        into.ttfe.append(ttfe)
        into.done.append(done)
        into.failures += not ok


def ready_library(data_dir: Path) -> tuple[str, str]:
    """The sample lecture ingested and run to ``ready``; returns (creator id, api key)."""
    from chronos_pipeline.instance import open_instance
    from chronos_pipeline.resources.data import ChronosData
    from chronos_pipeline.runner import run_pending

    services = Services(Settings.from_env({"CHRONOS_DATA_DIR": str(data_dir)}))
    try:
        creator, key = services.catalog.create_creator("Chat load")
        services.ingest.ingest_file(creator.id, SAMPLE_DIR / "lecture.mp4",
                                    title="Momentum indicators")
        instance = open_instance(services.settings)
        try:
            outcomes = run_pending(instance, ChronosData(data_dir=str(data_dir)))
        finally:
            instance.dispose()
        if not all(o.success for o in outcomes):
            raise SystemExit("the sample lecture did not get ready")
        return creator.id, key
    finally:
        services.close()


def existing_library(data_dir: Path) -> tuple[str, str]:
    """A creator with a ready lecture in ``data_dir``, with a fresh key."""
    services = Services(Settings.from_env({"CHRONOS_DATA_DIR": str(data_dir)}))
    try:
        for creator in services.catalog.list_creators():
            if any(v.status is VideoStatus.READY
                   for v in services.catalog.list_videos(creator.id)):
                return creator.id, services.catalog.rotate_api_key(creator.id)
        raise SystemExit(f"no ready lecture in {data_dir}")
    finally:
        services.close()


def ingest_cost(data_dir: Path, creator_id: str) -> str:
    """Extra embedding tokens and time the sentence vectors take, against the chunks'."""
    services = Services(Settings.from_env({"CHRONOS_DATA_DIR": str(data_dir)}))
    try:
        embedder = services.embedder
        video = next(v for v in services.catalog.list_videos(creator_id)
                     if v.status is VideoStatus.READY)
        chunks = load_chunks(services, video)
        embedder.embed(["warm up"])
        chunk_times, sentence_times = [], []
        for _ in range(3):  # interleaved; the best of each
            began = time.perf_counter()
            _, chunk_usage = embedder.embed([c.text for c in chunks])
            chunk_times.append(time.perf_counter() - began)
            began = time.perf_counter()
            made, usages = SentenceEmbedding(embedder).vectors(chunks)
            sentence_times.append(time.perf_counter() - began)
        chunk_s, sentence_s = min(chunk_times), min(sentence_times)
        chunk_tokens = chunk_usage.quantities["input_token"]
        sentence_tokens = sum(u.quantities["input_token"] for u in usages)
        texts = sum(len(v.sentences) + len(v.windows) for v in made)
        factor = sentence_tokens / chunk_tokens
        return (
            f"ingest: {len(chunks)} chunks ({chunk_tokens:.0f} tokens, {chunk_s:.2f} s); "
            f"their sentences and windows {texts} vectors per chunk row in all "
            f"({texts / len(chunks):.1f} a chunk), {sentence_tokens:.0f} tokens embedded "
            f"once each ({sentence_s:.2f} s): embed tokens x{1 + factor:.2f}"
            f" (sentences and windows alone x{factor:.2f} the chunks'), "
            f"embed time x{1 + sentence_s / chunk_s:.2f}"
        )
    finally:
        services.close()


def without_sentence_vectors(source: Path, target: Path) -> None:
    """A copy of the library as a table from before sentence vectors were stored."""
    shutil.copytree(source, target)
    db = lancedb.connect(str(target / "lancedb"))
    for name in db.list_tables().tables:
        if name.startswith("chunks__"):
            db.open_table(name).drop_columns(list(SENTENCE_COLUMNS))


def export_revision(rev: str, target: Path) -> Path:
    """The repository's files at ``rev``, for a server of that code."""
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", rev],
                             check=True, capture_output=True).stdout
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def report(label: str, timings: dict[str, Timings]) -> None:
    print(f"\n{label}")
    print(f"  {'':>11}  {'TTFE P50':>9}  {'TTFE P95':>9}  {'done P50':>9}  {'done P95':>9}  "
          f"{'answers/s':>9}  {'not done':>8}")
    for name, t in timings.items():
        rate = statistics.mean(t.answers_per_s) if t.answers_per_s else float("nan")
        print(f"  {name:>11}  {percentile(t.ttfe, .5):>8.3f}s  {percentile(t.ttfe, .95):>8.3f}s"
              f"  {percentile(t.done, .5):>8.3f}s  {percentile(t.done, .95):>8.3f}s  "
              f"{rate:>9.2f}  {t.failures:>8}")
    new = timings[STORED]
    for name, base in timings.items():
        if name == STORED:
            continue
        ratios = [percentile(base.ttfe, .5) / percentile(new.ttfe, .5),
                  percentile(base.ttfe, .95) / percentile(new.ttfe, .95),
                  percentile(base.done, .5) / percentile(new.done, .5),
                  percentile(base.done, .95) / percentile(new.done, .95)]
        rate = statistics.mean(new.answers_per_s) / statistics.mean(base.answers_per_s) \
            if base.answers_per_s else float("nan")
        line = "  ".join(f"{r:>8.2f}x" for r in ratios)
        print(f"  {'÷ ' + name:>11}  {line}  {rate:>8.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--single", type=int, default=5,
                        help="sequential questions per server per round")
    parser.add_argument("--data-dir", type=Path,
                        help="a data directory with a ready lecture (default: ingest the sample)")
    parser.add_argument("--also", metavar="GIT_REV",
                        help="also time this revision's server on the library without them")
    args = parser.parse_args(argv)
    questions = [str(q["question"]) for q in
                 json.loads((SAMPLE_DIR / "questions.json").read_text(encoding="utf-8"))]

    with tempfile.TemporaryDirectory(prefix="chronos-chat-load-") as tmp, ExitStack() as stack:
        stored_dir = Path(tmp) / STORED.replace(" ", "_")
        if args.data_dir is not None:
            shutil.copytree(args.data_dir, stored_dir)
            creator_id, key = existing_library(stored_dir)
        else:
            print("ingesting the sample lecture ...")
            creator_id, key = ready_library(stored_dir)
        print(ingest_cost(stored_dir, creator_id))
        baseline_dir = Path(tmp) / "on_request"
        without_sentence_vectors(stored_dir, baseline_dir)

        servers: list[tuple[str, Path, dict[str, str]]] = [
            (STORED, stored_dir, {}), (ON_REQUEST, baseline_dir, {})]
        if args.also:
            source = export_revision(args.also, Path(tmp) / "revision")
            revision_dir = Path(tmp) / "revision_data"
            without_sentence_vectors(stored_dir, revision_dir)
            servers.append((args.also[:10], revision_dir, {"PYTHONPATH": str(source)}))
        bases: dict[str, str] = {}
        for name, data_dir, env in servers:
            port = free_port()
            bases[name] = f"http://127.0.0.1:{port}"
            command = [sys.executable, "-m", "chronos_pipeline.cli", "serve", "--no-pipeline",
                       "--port", str(port)]
            stack.enter_context(running(command, {"CHRONOS_DATA_DIR": str(data_dir), **env},
                                        f"{bases[name]}/health"))
        for base in bases.values():  # load the model, open the table
            sequential(base, key, questions[:2], Timings())

        single = {name: Timings() for name in bases}
        crowd = {name: Timings() for name in bases}
        asked = [questions[i % len(questions)] for i in range(args.clients)]
        for round_ in range(args.rounds):
            order = list(bases) if round_ % 2 == 0 else list(reversed(bases))
            for name in order:
                picked = [questions[(round_ * args.single + i) % len(questions)]
                          for i in range(args.single)]
                sequential(bases[name], key, picked, single[name])
            for name in order:
                concurrent(bases[name], key, asked, crowd[name])
            print(f"round {round_ + 1}/{args.rounds} done")

    print(f"\nchat on the sample lecture, {args.rounds} rounds, all servers in this run "
          "(÷ rows: that server's times over stored's, > 1 means stored is faster; "
          "last column: stored's answers/s over that server's)")
    report(f"1 client ({args.rounds * args.single} questions each)", single)
    report(f"{args.clients} concurrent clients ({args.rounds * args.clients} questions each)",
           crowd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
