"""The ``vector_maintenance`` asset: chunk tables compacted, indexed and pruned."""

import dagster as dg

from chronos_pipeline.assets.steps import OWNERS
from chronos_pipeline.lib.vector_maintenance import optimize_vectors
from chronos_pipeline.resources.data import ChronosData


@dg.asset(group_name="vectors", kinds={"lancedb"}, owners=OWNERS, code_version="1")
def vector_maintenance(
    context: dg.AssetExecutionContext, data: ChronosData
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """LanceDB chunk tables compacted, their scalar indexes current, old versions pruned."""
    reports = optimize_vectors(data.services().settings.lancedb_dir)
    for r in reports:
        context.log.info(
            f"{r.table}: {r.rows} rows; fragments {r.fragments_before} -> {r.fragments_after}; "
            f"versions {r.versions_before} -> {r.versions_after}; {r.seconds:.1f} s")
    return dg.MaterializeResult(metadata={
        "tables": len(reports),
        "rows": sum(r.rows for r in reports),
        "indexes_created": ", ".join(f"{r.table}.{c}" for r in reports
                                     for c in r.indexes_created),
        "unindexed_rows_before": sum(r.unindexed_rows_before for r in reports),
        "fragments_before": sum(r.fragments_before for r in reports),
        "fragments_after": sum(r.fragments_after for r in reports),
        "versions_before": sum(r.versions_before for r in reports),
        "versions_after": sum(r.versions_after for r in reports),
        "bytes_before": sum(r.bytes_before for r in reports),
        "bytes_after": sum(r.bytes_after for r in reports),
        "seconds": dg.MetadataValue.float(sum(r.seconds for r in reports)),
    })
