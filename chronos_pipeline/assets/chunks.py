"""The ``chunks`` asset: the transcript cut into overlapping, timestamped passages."""

import dagster as dg

from chronos_pipeline.assets.steps import OWNERS, RETRY_POLICY, run_step
from chronos_pipeline.assets.transcripts import transcript
from chronos_pipeline.lib.steps import chunk_video
from chronos_pipeline.partitions import videos_partitions
from chronos_pipeline.resources.data import ChronosData


@dg.asset(partitions_def=videos_partitions, deps=[transcript], retry_policy=RETRY_POLICY,
          group_name="ingest", kinds={"python"},
          owners=OWNERS, code_version="1")
def chunks(
    context: dg.AssetExecutionContext, data: ChronosData
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Sentence-aligned chunks of about 120 words with their start and end times."""
    services = data.services()
    _chunks, result = run_step(context, services, "chunking",
                               lambda: chunk_video(services, context.partition_key))
    return dg.MaterializeResult(metadata=result.metadata)
