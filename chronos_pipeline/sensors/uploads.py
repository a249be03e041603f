"""The upload sensor: a new manifest in storage becomes a partition and one run."""

import logging

import dagster as dg

from chronos_pipeline.jobs import ingest_video_job
from chronos_pipeline.lib.catalog import SETTLED, VideoStatus
from chronos_pipeline.lib.errors import NotFoundError
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.uploads import NewUpload, UploadCursor, new_uploads
from chronos_pipeline.partitions import videos_partitions
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.tags import CREATOR_ID_TAG, CREATOR_TAG, LECTURE_TAG

SENSOR_NAME = "upload_sensor"


@dg.sensor(name=SENSOR_NAME, job=ingest_video_job, minimum_interval_seconds=5,
           default_status=dg.DefaultSensorStatus.RUNNING)
def upload_sensor(context: dg.SensorEvaluationContext, data: ChronosData) -> dg.SensorResult:
    """Adds a partition and requests one run per new upload (run key = video id, or
    ``id:retry-n`` for a retry); a lecture the catalog calls ready, failed or deleted gets
    none, so a fresh instance or a replayed manifest never pays for a lecture again."""
    services = data.services()
    uploads, cursor = new_uploads(services.storage, UploadCursor.parse(context.cursor))
    requests = []
    for upload in uploads:
        request = run_request_for(services, upload, context.log)
        if request is not None:
            requests.append(request)
    keys = list(dict.fromkeys(str(r.partition_key) for r in requests))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[videos_partitions.build_add_request(keys)] if keys else [],
        cursor=cursor.dump(),
    )


def run_request_for(
    services: Services, upload: NewUpload, log: logging.Logger | None = None
) -> dg.RunRequest | None:
    """The run a confirmed upload needs, or None when the catalog says there is no work."""
    try:
        video = services.catalog.find_video(upload.video_id)
    except NotFoundError:
        if log is not None:
            log.warning(f"manifest for unknown video {upload.video_id}; skipped")
        return None
    if video.status in SETTLED:
        return None
    if video.status is VideoStatus.UPLOADED:
        services.catalog.set_status(video.id, VideoStatus.QUEUED)
    try:
        creator = services.catalog.get_creator(video.creator_id).name
    except NotFoundError:
        creator = ""
    return dg.RunRequest(
        run_key=upload.run_key, partition_key=upload.video_id,
        tags={CREATOR_ID_TAG: video.creator_id, CREATOR_TAG: creator, LECTURE_TAG: video.title},
    )
