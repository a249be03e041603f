"""Optimize the LanceDB chunk tables every hour (compaction, index refresh, old versions)."""

import dagster as dg

from chronos_pipeline.jobs import optimize_vectors_job

vector_maintenance_schedule = dg.ScheduleDefinition(
    name="vector_maintenance_hourly",
    job=optimize_vectors_job,
    # Off the ledger compaction's minutes; every write adds a fragment and a version, and
    # LanceDB's rule of thumb is to optimize after ~20 writes or 100 k rows.
    cron_schedule="17 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Compact the chunk tables, fold new rows into their indexes, prune old "
                "versions.",
)
