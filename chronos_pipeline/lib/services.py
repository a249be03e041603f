"""The wired-up core: one object holding every service, built from ``Settings``.

The Dagster resources and the Litestar dependency providers both build their services
here, so the pipeline and the API always agree on where things live.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from chronos_pipeline.lib.answering import Answering
from chronos_pipeline.lib.budgets import Budgets
from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.embedding_models import provider_of
from chronos_pipeline.lib.errors import ConfigurationError
from chronos_pipeline.lib.ingest import Ingest
from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.ledger_totals import LedgerTotals
from chronos_pipeline.lib.pricing import PriceTable
from chronos_pipeline.lib.providers.base import ChatModel, Embedder, Transcriber
from chronos_pipeline.lib.providers.local_embedder import MODEL_ID as LOCAL_EMBEDDING_MODEL
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.storage import Storage
from chronos_pipeline.lib.vectors import VectorStore


def make_transcriber(settings: Settings) -> Transcriber:
    if settings.transcriber == "openai":
        from chronos_pipeline.lib.providers.openai_transcriber import OpenAITranscriber

        return OpenAITranscriber(
            api_key=settings.openai_api_key or "", model=settings.openai_transcription_model,
            base_url=settings.openai_base_url, max_piece_bytes=settings.transcription_piece_bytes,
            concurrency=settings.transcription_concurrency,
            max_retries=settings.provider_max_retries,
        )
    from chronos_pipeline.lib.providers.local_whisper import LocalWhisperTranscriber

    return LocalWhisperTranscriber(beam_size=settings.whisper_beam_size,
                                   threads=settings.whisper_threads)


def make_embedder(settings: Settings, model: str | None = None) -> Embedder:
    """The configured embedder, or the one serving ``model`` (a re-embedding's target, or
    the model a creator's chat searches) with the configured credentials."""
    provider = settings.embedder if model is None else provider_of(model)
    if provider == "openai":
        from chronos_pipeline.lib.providers.openai_embedder import OpenAIEmbedder

        if not settings.openai_api_key:
            raise ConfigurationError(f"embedding with {model} needs OPENAI_API_KEY")
        return OpenAIEmbedder(
            api_key=settings.openai_api_key,
            model=model or settings.openai_embedding_model,
            base_url=settings.openai_base_url, timeout_s=settings.provider_timeout_s,
            max_retries=settings.provider_max_retries,
        )
    from chronos_pipeline.lib.providers.local_embedder import LocalEmbedder

    return LocalEmbedder(threads=settings.whisper_threads)


def make_chat_model(settings: Settings, embedder: Embedder) -> ChatModel:
    if settings.chat_model == "anthropic":
        from chronos_pipeline.lib.providers.anthropic_chat import AnthropicChatModel

        return AnthropicChatModel(
            api_key=settings.anthropic_api_key or "", model=settings.anthropic_model,
            base_url=settings.anthropic_base_url, timeout_s=settings.provider_timeout_s,
            max_retries=settings.provider_max_retries,
        )
    if settings.chat_model == "openai-compatible":
        from chronos_pipeline.lib.providers.openai_chat import OpenAICompatibleChatModel

        return OpenAICompatibleChatModel(
            model=settings.chat_model_name or "", base_url=settings.chat_base_url,
            api_key=settings.chat_api_key, provider=settings.chat_provider,
            timeout_s=settings.provider_timeout_s, max_retries=settings.provider_max_retries,
        )
    from chronos_pipeline.lib.providers.extractive_chat import ExtractiveChatModel

    return ExtractiveChatModel(embedder)


_LOCK = threading.Lock()


@dataclass
class Services:
    settings: Settings

    @classmethod
    def from_env(cls) -> Services:
        return cls(Settings.from_env())

    def with_providers(
        self, *, transcriber: Transcriber | None = None, embedder: Embedder | None = None,
        chat_model: ChatModel | None = None, ledger: Ledger | None = None,
    ) -> Services:
        """These services with the given providers instead of the ones the settings name
        (the Dagster assets hand in the ones their resources built). Catalog, storage and
        ledger are shared with ``self``."""
        made = Services(self.settings)
        for name in ("catalog", "storage", "prices", "ledger", "budgets", "ingest"):
            if name in self.__dict__:
                made.__dict__[name] = self.__dict__[name]
        # A cached_property reads the instance's __dict__ first: seeding it is the injection.
        for name, given in (("transcriber", transcriber), ("embedder", embedder),
                            ("chat_model", chat_model), ("ledger", ledger)):
            if given is not None:
                made.__dict__[name] = given
        return made

    # Embedders and tables of models other than the configured one, made when first asked
    # for (not dataclass fields: the API's dependency injection reads the fields' types).
    @cached_property
    def _embedders(self) -> dict[str, Embedder]:
        return {}

    @cached_property
    def _stores(self) -> dict[str, VectorStore]:
        return {}

    def vectors_for(self, embedder: Embedder) -> VectorStore:
        """The LanceDB table of ``embedder``'s model (one table per model, never mixed)."""
        if embedder.model_id == self.embedder.model_id:
            return self.vectors
        with _LOCK:
            store = self._stores.get(embedder.model_id)
            if store is None:
                store = self._stores[embedder.model_id] = VectorStore(
                    self.settings.lancedb_dir, embedder.model_id, embedder.dimension)
            return store

    def embedder_for(self, model: str) -> Embedder:
        """The embedder of ``model``: the configured one when it is that model."""
        if model == self.embedder.model_id:
            return self.embedder
        with _LOCK:
            made = self._embedders.get(model)
            if made is None:
                made = self._embedders[model] = make_embedder(self.settings, model)
            return made

    @property
    def default_embedding_model(self) -> str:
        """The model the settings name (what a creator's chat searches until re-embedded)."""
        if self.settings.embedder == "openai":
            return self.settings.openai_embedding_model
        return LOCAL_EMBEDDING_MODEL

    def search_model(self, creator_id: str) -> tuple[Embedder, VectorStore]:
        """The embedder and table the creator's chat searches: their switched-to model, or
        the configured one."""
        model = self.catalog.embedding_model(creator_id) or self.default_embedding_model
        embedder = self.embedder_for(model)
        return embedder, self.vectors_for(embedder)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.settings.catalog_url)

    @cached_property
    def storage(self) -> Storage:
        return Storage(self.settings.storage_dir)

    @cached_property
    def prices(self) -> PriceTable:
        return PriceTable.load()

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.settings.ledger_dir, self.prices, totals=LedgerTotals(self.catalog))

    @cached_property
    def transcriber(self) -> Transcriber:
        return make_transcriber(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        return make_embedder(self.settings)

    @cached_property
    def chat_model(self) -> ChatModel:
        return make_chat_model(self.settings, self.embedder)

    @cached_property
    def vectors(self) -> VectorStore:
        return VectorStore(self.settings.lancedb_dir, self.embedder.model_id,
                           self.embedder.dimension)

    @cached_property
    def budgets(self) -> Budgets:
        return Budgets(self.catalog, self.ledger)

    @cached_property
    def ingest(self) -> Ingest:
        return Ingest(catalog=self.catalog, storage=self.storage, ledger=self.ledger,
                      max_bytes=self.settings.upload_max_bytes,
                      upload_ttl_s=self.settings.upload_ttl_s,
                      min_duration_s=self.settings.min_duration_s)

    @cached_property
    def checker(self) -> Embedder:
        """The local embedder that checks coverage and citations at no cost."""
        if self.embedder.provider == "local":
            return self.embedder
        from chronos_pipeline.lib.providers.local_embedder import LocalEmbedder

        return LocalEmbedder(threads=self.settings.whisper_threads)

    @cached_property
    def answering(self) -> Answering:
        return Answering(catalog=self.catalog, vectors=self.vectors, embedder=self.embedder,
                         chat_model=self.chat_model, ledger=self.ledger,
                         budgets=self.budgets, k=self.settings.retrieval_k,
                         retrieval_mode=self.settings.retrieval,
                         checker=self.checker, coverage_min=self.settings.coverage_min,
                         search_model=self.search_model)

    def close(self) -> None:
        if "catalog" in self.__dict__:
            self.catalog.close()
