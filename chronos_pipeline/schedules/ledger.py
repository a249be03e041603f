"""Compact the cost ledger every ten minutes (the API process does it too; one at a time)."""

import dagster as dg

from chronos_pipeline.jobs import compact_ledger_job

ledger_compaction_schedule = dg.ScheduleDefinition(
    name="ledger_compaction_every_10_minutes",
    job=compact_ledger_job,
    cron_schedule="*/10 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Fold the cost ledger's small files per day and reconcile month-to-date totals.",
)
