"""Alembic environment for the Chronos catalog."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from chronos_pipeline.lib.catalog_models import Base

config = context.config
target_metadata = Base.metadata
VERSION_TABLE = "chronos_catalog_version"


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        # Our own version table: Dagster's storage keeps its Alembic version in
        # `alembic_version`, and the two may share one PostgreSQL database.
        context.configure(connection=connection, target_metadata=target_metadata,
                          version_table=VERSION_TABLE,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
