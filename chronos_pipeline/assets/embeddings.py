"""The ``embeddings`` asset: one vector per chunk in LanceDB, replaced whole per video."""

import dagster as dg

from chronos_pipeline.assets.chunks import chunks
from chronos_pipeline.assets.steps import OWNERS, RETRY_POLICY, cost_metadata, run_step
from chronos_pipeline.checks import vector_check_result, vector_check_specs
from chronos_pipeline.jobs import reembed_job
from chronos_pipeline.lib.steps import embed_video
from chronos_pipeline.partitions import videos_partitions
from chronos_pipeline.pools import EMBEDDING
from chronos_pipeline.resources.chronos import ChronosResource
from chronos_pipeline.tags import asks_to_reembed


@dg.asset(partitions_def=videos_partitions, deps=[chunks], retry_policy=RETRY_POLICY,
          check_specs=vector_check_specs, group_name="ingest", kinds={"lancedb"},
          owners=OWNERS, code_version="1", pool=EMBEDDING)
def embeddings(
    context: dg.AssetExecutionContext, chronos: ChronosResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Chunk vectors in LanceDB; skipped when they already match the chunks, unless the run
    asks to re-embed (reembed_videos, a backfill, a re-execution, chronos/reembed=true)."""
    services = chronos.services()
    force = asks_to_reembed(context.job_name, dict(context.run.tags), reembed_job.name)
    result = run_step(
        context, services, "embedding",
        lambda: embed_video(services, context.partition_key, run_id=context.run_id,
                            log=context.log.info, force=force),
    )
    return dg.MaterializeResult(
        metadata={**result.metadata, **cost_metadata(result.costs), "forced": force},
        check_results=[vector_check_result(services, context.partition_key)],
    )
