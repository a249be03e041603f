"""The ``video`` asset: probe facts and a thumbnail for each uploaded lecture."""

import dagster as dg

from chronos_pipeline.assets.steps import OWNERS, RETRY_POLICY, run_step
from chronos_pipeline.lib.steps import probe_video
from chronos_pipeline.partitions import videos_partitions
from chronos_pipeline.resources.data import ChronosData


@dg.asset(partitions_def=videos_partitions, retry_policy=RETRY_POLICY, group_name="ingest",
          kinds={"python", "pyav"},
          owners=OWNERS, code_version="1")
def video(
    context: dg.AssetExecutionContext, data: ChronosData
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """The uploaded lecture, probed with PyAV, with a thumbnail JPEG."""
    services = data.services()
    result = run_step(context, services, "probing the video",
                      lambda: probe_video(services, context.partition_key))
    return dg.MaterializeResult(metadata=result.metadata)
