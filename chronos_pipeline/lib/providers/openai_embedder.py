"""Embeddings from OpenAI (``text-embedding-3-small`` by default) through the ``openai`` SDK.

One ``embed`` call is one HTTP request, so one ledger record per billed call. The tokens
billed come from the ``usage`` the API returns, never from a local estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx2
import numpy as np
import openai

from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import Embedder, at_most_tokens
from chronos_pipeline.lib.providers.provider_errors import translate

DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}
MAX_INPUTS = 2048  # the API's limit on inputs per request


class OpenAIEmbedder(Embedder):
    provider = "openai"
    max_tokens = 8191

    def __init__(self, *, api_key: str, model: str = "text-embedding-3-small",
                 base_url: str | None = None, timeout_s: float = 60.0,
                 max_retries: int = 3) -> None:
        self.model_id = model
        self.dimension = DIMENSIONS.get(model, 1536)
        self._client: Any = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s,
                                   max_retries=max_retries)

    def count_tokens(self, text: str) -> int:
        # No tokenizer offline: about four characters a token in English. Used only for
        # sizing and estimates; billing takes the API's own count.
        return max(1, len(text) // 4)

    def expected_usage(self, texts: Sequence[str]) -> Usage:
        # The budget's hold must cover the bill, so it takes the byte bound (plus a token per
        # input) rather than the four-characters estimate above.
        return Usage(self.provider, self.model_id,
                     {"input_token": sum(at_most_tokens(t) + 1 for t in texts)}, estimated=True)

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, Usage]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), Usage(
                self.provider, self.model_id, {"input_token": 0})
        if len(texts) > MAX_INPUTS:
            raise ValidationError(f"at most {MAX_INPUTS} texts per embedding request")
        try:
            response = self._client.embeddings.create(model=self.model_id, input=list(texts))
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise translate("OpenAI", exc) from exc
        rows = sorted(response.data, key=lambda item: item.index)
        vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        if vectors.shape != (len(texts), self.dimension):
            raise translate("OpenAI", ValueError(
                f"expected {len(texts)}×{self.dimension} vectors, got {vectors.shape}"))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)
        return vectors, Usage(self.provider, self.model_id,
                              {"input_token": int(response.usage.prompt_tokens)})
