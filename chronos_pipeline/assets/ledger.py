"""The ``ledger_compaction`` asset: the cost ledger with its small files folded per day."""

import dagster as dg

from chronos_pipeline.assets.steps import OWNERS
from chronos_pipeline.lib.ledger_compaction import compact_ledger
from chronos_pipeline.resources.stores import LedgerResource


@dg.asset(group_name="ledger", kinds={"python", "parquet", "duckdb"},
          owners=OWNERS, code_version="1")
def ledger_compaction(
    context: dg.AssetExecutionContext, ledger: LedgerResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """The cost ledger compacted per day, and its month-to-date totals reconciled."""
    report = compact_ledger(ledger.ledger())
    if report.skipped:
        context.log.info("another compaction (the API's) is running; nothing to do")
    return dg.MaterializeResult(metadata={
        "skipped": report.skipped,
        "view": report.view or "",
        "days_compacted": len(report.days),
        "files_before": report.files_before,
        "files_after": report.files_after,
        "records_rewritten": report.records_rewritten,
        "appended_meanwhile": report.appended_meanwhile,
        "calls_reconciled": report.reconciled_calls,
        "garbage_removed": report.removed,
        "seconds": dg.MetadataValue.float(report.seconds),
    })
