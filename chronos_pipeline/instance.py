"""The Dagster instance Chronos runs on: SQLite under the data directory, or PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from dagster import DagsterInstance

from chronos_pipeline.lib.settings import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "dagster_home"


def psycopg2_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg2://", url)


def prepare_dagster_home(settings: Settings) -> Path:
    """Write ``dagster.yaml`` for this data directory and return the folder (DAGSTER_HOME)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    storage = home / "storage"
    if settings.dagster_pg_url:
        template = TEMPLATES / "dagster.postgres.yaml"
        values = {"STORAGE_DIR": str(storage), "PG_URL": psycopg2_url(settings.dagster_pg_url)}
    else:
        template = TEMPLATES / "dagster.yaml"
        values = {"STORAGE_DIR": str(storage), "PG_URL": ""}
    text = Template(template.read_text()).safe_substitute(values)
    target = home / "dagster.yaml"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return home


def open_instance(settings: Settings) -> DagsterInstance:
    return DagsterInstance.from_config(str(prepare_dagster_home(settings)))
