"""The ``playback`` asset: a browser-playable MP4 of each lecture, beside its source."""

import dagster as dg

from chronos_pipeline.assets.steps import OWNERS
from chronos_pipeline.assets.videos import video
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.playback import playback_for_video
from chronos_pipeline.partitions import videos_partitions
from chronos_pipeline.resources.data import ChronosData

# Below the default priority 0: when steps wait for one executor slot (in-process runs),
# transcription, chunks and embeddings go first, so a long transcode never delays chat.
PLAYBACK_PRIORITY = "-1"


@dg.asset(partitions_def=videos_partitions, deps=[video], group_name="ingest",
          kinds={"pyav", "mp4"},
          owners=OWNERS, code_version="1", op_tags={"dagster/priority": PLAYBACK_PRIORITY})
def playback(
    context: dg.AssetExecutionContext, data: ChronosData
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """playback.mp4: streams copied when browsers play them, else H.264 ≤480p + AAC."""
    try:
        report = playback_for_video(data.services(), context.partition_key)
    except ChronosError as exc:
        # The lecture stays usable (chat, transcript, the source file): fail this asset only.
        raise dg.Failure(description=exc.message, allow_retries=False) from exc
    return dg.MaterializeResult(metadata=report.metadata())
