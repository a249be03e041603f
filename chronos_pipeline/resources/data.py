"""Where Chronos keeps its state, as a Dagster resource: the data directory and catalog."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg

from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings


@lru_cache(maxsize=8)
def _services(settings: Settings) -> Services:
    # One catalog (one connection pool) per process and data directory.
    return Services(settings)


class ChronosData(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The data directory (uploads, transcripts, chunks, vectors, ledger) and the catalog
    database (SQLite inside the data directory unless ``database_url`` names PostgreSQL)."""

    data_dir: str | None = None
    database_url: str | None = None

    def settings(self) -> Settings:
        """The deployment's settings, with this resource's places in them (unset: the
        environment's, ``CHRONOS_DATA_DIR`` or ./data)."""
        settings = Settings.from_env()
        if self.data_dir:
            settings = settings.with_overrides(
                data_dir=Path(self.data_dir).expanduser().resolve())
        if self.database_url:
            settings = settings.with_overrides(database_url=self.database_url)
        return settings

    def services(self) -> Services:
        """Catalog and storage of this data directory. Providers are not in it: an asset
        adds the ones it asks for by type (``with_providers``)."""
        return _services(self.settings())
