"""Keeping the full-text index current: refresh after a video's write vs a full rebuild.

A table of ``--videos`` lectures × 40 chunks (random words from a fixed vocabulary, fixed
seed) gets its index; then one video is replaced (``merge_insert``) and one deleted, and we
time, in the same process: a full-text query with the new rows unindexed, the incremental
``refresh_text_index`` (delta merge of this index only), the same query after it, and a full
rebuild (``create_index(..., replace=True)``). Usage::

    .venv/bin/python -m benchmarks.text_index [--videos 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chronos_pipeline.lib.chunking import Chunk, Sentence
from chronos_pipeline.lib.vectors import TEXT_INDEX, VectorStore

CREATOR = "cr_0000000000000001"
DIM = 16


def _lecture(rng: np.random.Generator, vocabulary: list[str]) -> tuple[list[Chunk], np.ndarray]:
    chunks = []
    for i in range(40):
        text = " ".join(rng.choice(vocabulary, 120))
        chunks.append(Chunk(i, i * 30.0, i * 30.0 + 29, text, [Sentence(i * 30.0, i * 30.0 + 29,
                                                                         text)]))
    return chunks, rng.normal(size=(40, DIM)).astype(np.float32)


def _timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--videos", type=int, default=500)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    vocabulary = [f"w{n}" for n in range(5000)]
    with tempfile.TemporaryDirectory(prefix="chronos-fts-") as tmp:
        store = VectorStore(Path(tmp), "bench/model", DIM)
        for v in range(args.videos):
            chunks, vectors = _lecture(rng, vocabulary)
            store.replace_video(creator_id=CREATOR, video_id=f"vd_{v:016x}", course_id=None,
                                chunks=chunks, vectors=vectors)
        built = _timed(store.ensure_text_index)
        query = rng.normal(size=DIM).astype(np.float32)
        stale = refreshed = 0.0

        def ask() -> object:
            return store.text_search("w1 w42 w4242", query, creator_id=CREATOR, k=20)

        ask()
        indexed = min(_timed(ask) for _ in range(5))
        for video in (3, 1):  # the first round warms up (pylance's import, caches)
            chunks, vectors = _lecture(rng, vocabulary)
            store.replace_video(creator_id=CREATOR, video_id=f"vd_{video:016x}",
                                course_id=None, chunks=chunks, vectors=vectors)
            store.delete_video(f"vd_{video + 1:016x}")
            stale = min(_timed(ask) for _ in range(5))
            refreshed = _timed(store.refresh_text_index)
        after = min(_timed(ask) for _ in range(5))
        table = store._table()
        rebuild = _timed(lambda: table.create_index("text", config=__import__(
            "lancedb.index", fromlist=["FTS"]).FTS(), name=TEXT_INDEX, replace=True))
    rows = args.videos * 40
    print(f"{rows} chunks: first index build {built:.2f} s")
    print(f"query, all indexed {indexed * 1000:.1f} ms; with one video's 40 rows unindexed "
          f"{stale * 1000:.1f} ms; after refresh {after * 1000:.1f} ms")
    print(f"refresh after one video's write {refreshed:.3f} s vs full rebuild {rebuild:.3f} s "
          f"(×{rebuild / refreshed:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
