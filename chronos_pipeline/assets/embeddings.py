"""The ``embeddings`` asset: one vector per chunk in LanceDB, replaced whole per video."""

import dagster as dg

from chronos_pipeline.assets.chunks import chunks
from chronos_pipeline.assets.steps import RETRY_POLICY, cost_metadata, run_step
from chronos_pipeline.checks import vector_check_result, vector_check_specs
from chronos_pipeline.lib.steps import embed_video
from chronos_pipeline.partitions import videos_partitions
from chronos_pipeline.resources.chronos import ChronosResource


@dg.asset(partitions_def=videos_partitions, deps=[chunks], retry_policy=RETRY_POLICY,
          check_specs=vector_check_specs, group_name="ingest", kinds={"lancedb"})
def embeddings(
    context: dg.AssetExecutionContext, chronos: ChronosResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Chunk vectors in LanceDB (re-running replaces this video's rows, never adds)."""
    services = chronos.services()
    result = run_step(
        context, services, "embedding",
        lambda: embed_video(services, context.partition_key, run_id=context.run_id,
                            log=context.log.info),
    )
    return dg.MaterializeResult(
        metadata={**result.metadata, **cost_metadata(result.costs)},
        check_results=[vector_check_result(services, context.partition_key)],
    )
