"""The local embedder under concurrency: many threads, two instances, one shared model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from chronos_pipeline.lib.providers.local_embedder import LocalEmbedder

TEXTS = [
    "RSI compares the size of recent gains with recent losses.",
    "A golden cross happens when the fifty day average climbs above the two hundred day.",
    "Short text.",
    "Moving averages smooth a noisy price series " * 6,
]


def test_concurrent_embedding_and_token_counting_give_the_sequential_answers() -> None:
    first, second = LocalEmbedder(), LocalEmbedder()
    expected, usage = first.embed(TEXTS)
    expected_counts = [first.count_tokens(t) for t in TEXTS]

    def work(i: int) -> tuple[np.ndarray, float, list[int]]:
        embedder = first if i % 2 else second
        vectors, used = embedder.embed(TEXTS[i % 4:] + TEXTS[: i % 4])
        counts = [embedder.count_tokens(t) for t in TEXTS]
        return np.roll(vectors, i % 4, axis=0), used.quantities["input_token"], counts

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(32)))
    for vectors, tokens, counts in results:
        np.testing.assert_allclose(vectors, expected, atol=1e-5)
        assert tokens == usage.quantities["input_token"]
        assert counts == expected_counts


def test_a_question_embedded_alone_matches_its_vector_in_an_ingest_sized_batch() -> None:
    embedder = LocalEmbedder()
    batch = [f"{text} ({i})" for i in range(5) for text in TEXTS]
    alone = np.concatenate([embedder.embed([text])[0] for text in batch[:4]])
    together, _ = embedder.embed(batch)
    np.testing.assert_allclose(alone, together[:4], atol=1e-5)
