"""The ledger and the vector store as Dagster resources, both inside the data directory."""

import dagster as dg

from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.providers.base import Embedder
from chronos_pipeline.lib.vectors import VectorStore
from chronos_pipeline.resources.data import ChronosData


class LedgerResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The append-only cost ledger (Parquet under ``<data dir>/ledger``, read with DuckDB)."""

    data: ChronosData

    def ledger(self) -> Ledger:
        return self.data.services().ledger


class VectorStoreResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """LanceDB under ``<data dir>/lancedb``: one table per embedding model, never mixed."""

    data: ChronosData

    def store(self, embedder: Embedder) -> VectorStore:
        """The table of ``embedder``'s model."""
        return self.data.services().vectors_for(embedder)
