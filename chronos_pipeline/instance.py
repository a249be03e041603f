"""The Dagster instance Chronos runs on: SQLite under the data directory, or PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from dagster import DagsterInstance

from chronos_pipeline import pools
from chronos_pipeline.lib.settings import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "dagster_home"


def psycopg2_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg2://", url)


def prepare_dagster_home(settings: Settings) -> Path:
    """Write ``dagster.yaml`` for this data directory and return the folder (DAGSTER_HOME)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    storage = home / "storage"
    cores = pools.machine_cores()
    values = {"STORAGE_DIR": str(storage), "PG_URL": "",
              "POOL_SLOTS": str(pools.machine_slots(settings.whisper_threads, cores)),
              "POOL_CORES": str(cores), "POOL_THREADS": str(settings.whisper_threads)}
    if settings.dagster_pg_url:
        template = TEMPLATES / "dagster.postgres.yaml"
        values["PG_URL"] = psycopg2_url(settings.dagster_pg_url)
    else:
        template = TEMPLATES / "dagster.yaml"
    text = Template(template.read_text()).safe_substitute(values)
    target = home / "dagster.yaml"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return home


def declare_pools(instance: DagsterInstance) -> None:
    """Give every Chronos pool its default limit now, so the UI's Concurrency page lists
    them before the first step claims a slot (Dagster would do it then). A pool with a limit
    of its own (``dagster instance concurrency set``, the UI) is left alone."""
    storage = instance.event_log_storage
    default = instance.global_op_concurrency_default_limit
    if default is None or not storage.supports_global_concurrency_limits:
        return
    known = {limit.name: limit for limit in storage.get_pool_limits()}
    for pool in pools.ALL:
        limit = known.get(pool)
        if limit is None or (limit.from_default and limit.limit != default):
            storage.initialize_concurrency_limit_to_default(pool)


def open_instance(settings: Settings) -> DagsterInstance:
    instance = DagsterInstance.from_config(str(prepare_dagster_home(settings)))
    declare_pools(instance)
    return instance
