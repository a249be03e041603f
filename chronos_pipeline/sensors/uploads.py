"""The upload sensor: a new manifest in storage becomes a partition and one run."""

import dagster as dg

from chronos_pipeline.jobs import ingest_video_job
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.errors import NotFoundError
from chronos_pipeline.lib.uploads import UploadCursor, new_uploads
from chronos_pipeline.partitions import videos_partitions
from chronos_pipeline.resources.chronos import ChronosResource

SENSOR_NAME = "upload_sensor"


@dg.sensor(name=SENSOR_NAME, job=ingest_video_job, minimum_interval_seconds=5,
           default_status=dg.DefaultSensorStatus.RUNNING)
def upload_sensor(context: dg.SensorEvaluationContext, chronos: ChronosResource) -> dg.SensorResult:
    """Adds a partition and requests one run per new upload (run key = video id, or
    ``id:retry-n`` for a retry)."""
    services = chronos.services()
    uploads, cursor = new_uploads(services.storage, UploadCursor.parse(context.cursor))
    requests = []
    for upload in uploads:
        try:
            video = services.catalog.find_video(upload.video_id)
        except NotFoundError:
            context.log.warning(f"manifest for unknown video {upload.video_id}; skipped")
            continue
        if video.status is VideoStatus.DELETED:
            continue
        if video.status is VideoStatus.UPLOADED:
            services.catalog.set_status(video.id, VideoStatus.QUEUED)
        requests.append(dg.RunRequest(run_key=upload.run_key, partition_key=upload.video_id))
    keys = list(dict.fromkeys(str(r.partition_key) for r in requests))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[videos_partitions.build_add_request(keys)] if keys else [],
        cursor=cursor.dump(),
    )
