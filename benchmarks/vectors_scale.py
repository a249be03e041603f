"""Creator-filtered search and per-video writes on a big chunk table, against numpy brute
force over that creator's vectors in memory, in the same run.

The table. ROWS chunks (default 1,000,000) of 100 creators × videos of 100 chunks, random
unit 384-d vectors (the MiniLM size), video order shuffled so each creator's rows are spread
over the table as real uploads are. Three creators (the ones timed) have realistic rows:
~120-word text, sentence JSON and the answerer's vectors (6 sentences + 5 windows per
chunk, 17 KB a row); the other rows carry short text and no sentence vectors (at 17 KB a
row, 1 M of them would be 17 GB). Rows are written with ``table.add`` in 50 k batches and
compacted (replace_video one video at a time would take an hour at 1 M); the write phase
below then goes through ``VectorStore.replace_video`` exactly as the pipeline does.

Phases, each timing ours and the baseline interleaved query by query (the machine is
shared and noisy: read the ratios):
1. no scalar index (main before this change) — a full scan per search;
2. ``ensure_scalar_indexes`` (what a table gets at creation) — the chosen design;
3. WRITES ``replace_video`` calls: the upsert path against the old full-join merge, and
   search on the table they leave (a fragment and a version each);
4. ``optimize_vectors`` (compaction, index refresh, old versions pruned), then search again.
And, for the note, the design not taken: each creator's vectors cached in the process,
invalidated by the table version (``CacheSketch``; its recall is exact by construction).

Exactness: every timed search is compared with numpy's top 5 over the same creator
(recall@5 against exact search).

Usage: ``python -m benchmarks.vectors_scale [ROWS] [QUERIES] [WRITES]``
(defaults 1000000, 200, 200).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chronos_pipeline.lib.chunking import Chunk, Sentence
from chronos_pipeline.lib.providers.base import SentenceVectors
from chronos_pipeline.lib.vector_maintenance import ensure_scalar_indexes, optimize_vectors
from chronos_pipeline.lib.vectors import VectorStore, _vector_list, _vector_lists, table_schema

DIM = 384
CREATORS = 100
PER_VIDEO = 100
COURSES_PER_CREATOR = 3
TIMED = 3  # creators with realistic rows, whose searches are timed
SENTENCES = 6
BATCH = 50_000
MODEL = "bench/minilm-384"
WORDS = ["entropy", "measures", "how", "many", "microstates", "correspond", "to", "one",
         "macrostate", "so", "the", "second", "law", "follows", "from", "counting", "rather",
         "than", "any", "force"]


def creator(n: int) -> str:
    return f"cr_{n:016x}"


def course(n: int, c: int) -> str:
    return f"co_{n * COURSES_PER_CREATOR + c:016x}"


def video(n: int) -> str:
    return f"vd_{n:016x}"


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def text(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(WORDS, words))


def realistic_chunks(rng: np.random.Generator) -> list[Chunk]:
    chunks = []
    for i in range(PER_VIDEO):
        sentences = [Sentence(i * 30.0 + j * 5, i * 30.0 + j * 5 + 5, text(rng, 20))
                     for j in range(SENTENCES)]
        chunks.append(Chunk(i, i * 30.0, i * 30.0 + 30, " ".join(s.text for s in sentences),
                            sentences))
    return chunks


def batch_rows(rng: np.random.Generator, videos: list[int]) -> pa.Table:
    n = len(videos) * PER_VIDEO
    owners = [v % CREATORS for v in videos]
    full = [o < TIMED for o in owners]
    sentence_vectors, window_vectors, texts, sentences = [], [], [], []
    for is_full in full:
        for i in range(PER_VIDEO):
            if is_full:
                words = [text(rng, 20) for _ in range(SENTENCES)]
                texts.append(" ".join(words))
                sentences.append(json.dumps([[i * 30.0 + j * 5, i * 30.0 + j * 5 + 5, w]
                                             for j, w in enumerate(words)]))
                sentence_vectors.append(unit(rng, SENTENCES))
                window_vectors.append(unit(rng, SENTENCES - 1))
            else:
                texts.append(f"chunk {i}")
                sentences.append("[]")
                sentence_vectors.append(None)
                window_vectors.append(None)

    def lists(arrays: list[np.ndarray | None]) -> pa.Array:
        present = [a if a is not None else np.zeros((0, DIM), np.float32) for a in arrays]
        made = _vector_lists(present, DIM)
        mask = pa.array([a is None for a in arrays])
        return pc.if_else(mask, pa.nulls(len(arrays), _vector_list(DIM)), made)

    index = np.tile(np.arange(PER_VIDEO), len(videos))
    return pa.table({
        "video_id": [video(v) for v in videos for _ in range(PER_VIDEO)],
        "creator_id": [creator(o) for o in owners for _ in range(PER_VIDEO)],
        "course_id": [course(o, v % COURSES_PER_CREATOR) for v, o in zip(videos, owners,
                                                                          strict=True)
                      for _ in range(PER_VIDEO)],
        "chunk_index": pa.array(index, pa.int32()),
        "start_s": index * 30.0, "end_s": index * 30.0 + 30,
        "text": texts, "sentences": sentences,
        "embedding_model": [MODEL] * n,
        "embedding_dim": pa.array([DIM] * n, pa.int32()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(unit(rng, n).reshape(-1)), DIM),
        "sentence_vectors": lists(sentence_vectors),
        "window_vectors": lists(window_vectors),
    }, schema=table_schema(DIM))


def build(directory: Path, rows: int, rng: np.random.Generator) -> Any:
    videos = list(rng.permutation(rows // PER_VIDEO))
    db = lancedb.connect(str(directory))
    table = db.create_table(VectorStore(directory, MODEL, DIM).name, schema=table_schema(DIM))
    per_batch = BATCH // PER_VIDEO
    for start in range(0, len(videos), per_batch):
        table.add(batch_rows(rng, [int(v) for v in videos[start:start + per_batch]]))
    table.optimize(cleanup_older_than=timedelta(0))
    return table


class Exact:
    """Each timed creator's vectors in memory: numpy brute force, the baseline."""

    def __init__(self, directory: Path) -> None:
        table = lancedb.connect(str(directory)).open_table(VectorStore(directory, MODEL,
                                                                       DIM).name)
        self.vectors: dict[str, np.ndarray] = {}
        self.keys: dict[str, list[tuple[str, int]]] = {}
        self.courses: dict[str, np.ndarray] = {}
        for n in range(TIMED):
            got = (table.search().where(f"creator_id = '{creator(n)}'")
                   .select(["video_id", "chunk_index", "course_id", "vector"])
                   .limit(None).to_arrow())
            self.refresh(creator(n), got)

    def refresh(self, owner: str, got: pa.Table) -> None:
        self.vectors[owner] = np.asarray(
            got["vector"].combine_chunks().values.to_numpy(), np.float32).reshape(-1, DIM)
        self.keys[owner] = list(zip(got["video_id"].to_pylist(),
                                    got["chunk_index"].to_pylist(), strict=True))
        self.courses[owner] = np.asarray(got["course_id"].to_pylist())

    def top(self, owner: str, q: np.ndarray, k: int, course_id: str | None = None
            ) -> list[tuple[str, int]]:
        scores = self.vectors[owner] @ q
        if course_id is not None:
            scores = np.where(self.courses[owner] == course_id, scores, -np.inf)
        best = np.argpartition(-scores, k)[:k]
        best = best[np.argsort(-scores[best])]
        return [self.keys[owner][i] for i in best]


class CacheSketch:
    """The design not taken, timed for the note: each creator's vectors in the process's
    memory, valid while the table's version is unchanged (any write to the table, by any
    creator, moves it). A hit = version check + numpy + fetching the k rows by row id."""

    COLUMNS = ["video_id", "chunk_index", "start_s", "end_s", "text", "sentences",
               "sentence_vectors", "window_vectors"]

    def __init__(self, directory: Path) -> None:
        db = lancedb.connect(str(directory), read_consistency_interval=timedelta(0))
        self.table = db.open_table(VectorStore(directory, MODEL, DIM).name)
        self.cached: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

    def load(self, owner: str) -> tuple[int, np.ndarray, np.ndarray]:
        version = self.table.version
        got = (self.table.search().where(f"creator_id = '{owner}'").select(["vector"])
               .with_row_id(True).limit(None).to_arrow())
        vectors = np.asarray(got["vector"].combine_chunks().values.to_numpy(),
                             np.float32).reshape(-1, DIM)
        self.cached[owner] = (version, vectors, got["_rowid"].to_numpy())
        return self.cached[owner]

    def search(self, owner: str, q: np.ndarray, k: int) -> pa.Table:
        entry = self.cached.get(owner)
        if entry is None or entry[0] != self.table.version:
            entry = self.load(owner)
        scores = entry[1] @ q
        best = np.argpartition(-scores, k)[:k]
        best = best[np.argsort(-scores[best])]
        return self.table.take_row_ids([int(r) for r in entry[2][best]]).select(
            self.COLUMNS).to_arrow()


def cache_sketch(directory: Path, exact: Exact, rng: np.random.Generator, queries: int
                 ) -> tuple[list[float], list[float], list[float], float]:
    """(hits, numpy, reloads, recall@5) for the in-memory cache sketched above."""
    cache = CacheSketch(directory)
    hits, theirs, reloads, found = [], [], [], 0
    for n in range(TIMED):
        reloads += timed(lambda n=n: cache.load(creator(n)), 5)
    for _ in range(queries):
        owner = creator(int(rng.integers(TIMED)))
        q = unit(rng, 1)[0]
        started = time.perf_counter()
        got = cache.search(owner, q, 5)
        mid = time.perf_counter()
        expected = exact.top(owner, q, 5)
        hits.append(mid - started)
        theirs.append(time.perf_counter() - mid)
        found += len(set(zip(got["video_id"].to_pylist(), got["chunk_index"].to_pylist(),
                             strict=True)) & set(expected))
    return hits, theirs, reloads, found / (5 * queries)


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:>9.2f}{p95(times) * 1000:>9.2f}"


def interleaved(store: VectorStore, exact: Exact, rng: np.random.Generator, queries: int,
                scoped: bool = False) -> tuple[list[float], list[float], float]:
    """(ours, numpy, recall@5) over ``queries`` searches of random timed creators."""
    ours, theirs, found = [], [], 0
    for n in range(queries + 1):
        owner = creator(int(rng.integers(TIMED)))
        c = course(int(owner[3:], 16), int(rng.integers(COURSES_PER_CREATOR))) if scoped else None
        # A stored vector with noise: a question near one chunk, as real ones are.
        base = exact.vectors[owner][int(rng.integers(len(exact.vectors[owner])))]
        q = base + 0.7 * unit(rng, 1)[0] / np.sqrt(2)
        q = (q / np.linalg.norm(q)).astype(np.float32)
        started = time.perf_counter()
        hits = store.search(q, creator_id=owner, course_id=c, k=5)
        mid = time.perf_counter()
        expected = exact.top(owner, q, 5, c)
        ended = time.perf_counter()
        if n == 0:
            continue  # warm-up
        ours.append(mid - started)
        theirs.append(ended - mid)
        found += len({(h.video_id, h.chunk_index) for h in hits} & set(expected))
    return ours, theirs, found / (5 * queries)


def timed(function: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    rows = int(args[0]) if args else 1_000_000
    queries = int(args[1]) if len(args) > 1 else 200
    writes = int(args[2]) if len(args) > 2 else 200
    rng = np.random.default_rng(7)
    # Nobody else reads this table: pruning every old version is safe here (not in production).
    warnings.filterwarnings("ignore", message="optimize.cleanup_older_than=0")
    results: list[tuple[str, list[float], list[float], float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        table = build(directory, rows, rng)
        print(f"{table.count_rows():,} rows, {CREATORS} creators "
              f"({rows // CREATORS:,} chunks each), built and compacted in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        store = VectorStore(directory, MODEL, DIM)
        exact = Exact(directory)

        ours, theirs, recall = interleaved(store, exact, rng, min(10, queries))
        results.append(("no scalar index (before)", ours, theirs, recall))
        started = time.perf_counter()
        ensure_scalar_indexes(table)
        built = time.perf_counter() - started
        print(f"scalar indexes (creator_id, course_id bitmap; video_id btree) built in "
              f"{built:.1f} s", flush=True)
        results.append(("scalar indexes, compacted", *interleaved(store, exact, rng, queries)))
        results.append(("  same, course-scoped", *interleaved(store, exact, rng, queries,
                                                              scoped=True)))
        hits, theirs, reloads, recall = cache_sketch(directory, exact, rng, queries)
        results.append(("(not taken) per-creator cache hit", hits, theirs, recall))
        print(f"(not taken) per-creator cache: a reload after any write to the table "
              f"{ms(reloads)} ms (p50, p95); {rows // CREATORS * DIM * 4 / 2**20:.1f} MiB per "
              f"creator per process", flush=True)

        # Writes, as the pipeline makes them: a timed creator's video rewritten whole.
        chunks = realistic_chunks(rng)
        extras = [SentenceVectors(unit(rng, SENTENCES), unit(rng, SENTENCES - 1))
                  for _ in chunks]
        owner_videos = [v for v in range(rows // PER_VIDEO) if v % CREATORS < TIMED]

        def rewrite(v: int) -> None:
            owner = v % CREATORS
            store.replace_video(creator_id=creator(owner), video_id=video(v),
                                course_id=course(owner, v % COURSES_PER_CREATOR),
                                chunks=chunks, vectors=unit(rng, PER_VIDEO),
                                sentence_vectors=extras)

        def full_join(v: int) -> None:
            owner = v % CREATORS
            store.replace_video(creator_id=creator(owner), video_id=video(v),
                                course_id=course(owner, v % COURSES_PER_CREATOR),
                                chunks=chunks[:-1], vectors=unit(rng, PER_VIDEO - 1),
                                sentence_vectors=extras[:-1])

        upsert, join = [], []
        for n in range(6):
            upsert += timed(lambda n=n: rewrite(owner_videos[(2 * n) % len(owner_videos)]), 1)
            join += timed(lambda n=n: full_join(owner_videos[(2 * n + 1) % len(owner_videos)]), 1)
        print(f"replace_video at {rows:,} rows (100 chunks):  same chunks (upsert) "
              f"{ms(upsert[1:])} ms   a chunk fewer (full join, = main) {ms(join[1:])} ms   "
              f"ratio {statistics.median(join[1:]) / statistics.median(upsert[1:]):.1f}x",
              flush=True)
        write_times = timed(lambda: rewrite(owner_videos[int(rng.integers(len(owner_videos)))]),
                            writes)
        print(f"{writes} more replace_video: median {statistics.median(write_times):.3f} s, "
              f"p95 {p95(write_times):.3f} s", flush=True)
        exact = Exact(directory)  # the rewritten videos have new vectors
        results.append((f"after {writes + 12} writes, uncompacted",
                        *interleaved(store, exact, rng, queries)))
        report = optimize_vectors(directory, keep_versions=timedelta(0))[0]
        print(f"optimize_vectors: {report.seconds:.1f} s; fragments {report.fragments_before}"
              f" -> {report.fragments_after}; versions {report.versions_before} -> "
              f"{report.versions_after}; disk {report.bytes_before / 2**30:.2f} -> "
              f"{report.bytes_after / 2**30:.2f} GiB; {report.unindexed_rows_before:,} "
              f"unindexed index entries folded in", flush=True)
        results.append(("after optimize_vectors", *interleaved(store, exact, rng, queries)))

    print(f"\ncreator-filtered search, k=5, {rows:,} rows; baseline = numpy brute force over "
          f"the creator's {rows // CREATORS:,} vectors in memory")
    print(f"{'state':<34}{'p50 ms':>9}{'p95 ms':>9}   {'numpy p50':>9}{'p95':>9}"
          f"{'ratio p50':>11}{'recall@5':>10}")
    for label, ours, theirs, recall in results:
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"{label:<34}{ms(ours)}   {ms(theirs)}{ratio:>10.0f}x{recall:>10.3f}")
    print("ratio = ours / numpy (how many times slower than brute force in memory)")


if __name__ == "__main__":
    main()
