"""The Chronos core as a Dagster resource."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg

from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings


@lru_cache(maxsize=8)
def _services(settings: Settings) -> Services:
    # One set of services per process and configuration; models are cached per process.
    return Services(settings)


class ChronosResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Catalog, storage, ledger, vector store and providers, configured from the environment."""

    data_dir: str | None = None

    def services(self) -> Services:
        settings = Settings.from_env()
        if self.data_dir:
            settings = settings.with_overrides(data_dir=Path(self.data_dir).resolve())
        return _services(settings)
