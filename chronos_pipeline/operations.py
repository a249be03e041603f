"""Operations on the pipeline that need the Dagster instance: retry a lecture, forget one.

Public Dagster APIs only. A retry does not launch a run itself: it hands the video back to
the upload sensor (a rewritten manifest, a new run key), so the run is requested, shown and
queued exactly like a first upload's, by the daemon or by ``runner.run_pending``.
"""

from __future__ import annotations

import dagster as dg

from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import SETTLED, Video, VideoStatus
from chronos_pipeline.lib.deletion import delete_lecture
from chronos_pipeline.lib.errors import ConflictError
from chronos_pipeline.lib.services import Services
from chronos_pipeline.partitions import VIDEOS
from chronos_pipeline.tags import PARTITION_TAG

# A lecture whose run died is queued again this many times; then it stays failed.
MAX_REPAIRS = 2
STOPPED = "the pipeline stopped before finishing"
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
          dg.DagsterRunStatus.CANCELING]


def retry_video(instance: dg.DagsterInstance, services: Services, video_id: str) -> Video:
    """Queue a failed lecture for a new run of its partition; returns it (``uploaded``).

    Work already done is not paid for twice: the transcript step reuses a transcript the
    same model made, and the embeddings step replaces the video's vectors.
    """
    active = instance.get_runs(
        filters=dg.RunsFilter(tags={PARTITION_TAG: video_id}, statuses=ACTIVE), limit=1)
    if active:
        raise ConflictError(
            f"run {active[0].run_id} of lecture {video_id} has not ended yet; retry when it "
            "has (or terminate it in the Dagster UI)"
        )
    return services.ingest.retry(video_id)


def fail_dead_run(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> None:
    """Mark failed a run whose process ended without saying how, and give back the
    concurrency-pool slots it claimed: its process never will, and the lecture's next run
    would wait for the transcription slot forever."""
    instance.report_run_failed(run, reason)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def repair_after_stopped_run(
    instance: dg.DagsterInstance, services: Services, video_id: str, run_id: str, reason: str
) -> Video | None:
    """A lecture left unsettled by a run that ended (its process died, run monitoring failed
    it): marked failed with the reason, then queued again through the upload sensor (a new
    run key) at most ``MAX_REPAIRS`` times. Returns the lecture, or None when its run
    settled it (ready, or failed with its own message) or another run is still working.

    What was paid for is not paid again: a transcript the same model made is reused and
    vectors matching the chunks are kept. (Local transcription records its usage when it
    ends, so audio half done by the dead run was never recorded.)
    """
    # The ended run's claimed concurrency-pool slots are never given back by its process:
    # freed here, or the lecture's next run would wait for the transcription slot forever.
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    video = services.catalog.find_video(video_id)
    if video.status in SETTLED:
        return None
    history = services.catalog.status_history(video_id)
    if any(run_id in (event.message or "") for event in history):
        return None  # repaired already (the in-process runner and the sensor both look)
    if instance.get_runs(filters=dg.RunsFilter(tags={PARTITION_TAG: video_id},
                                               statuses=ACTIVE), limit=1):
        return None
    repairs = sum(1 for event in history if event.status is VideoStatus.FAILED
                  and (event.message or "").startswith(STOPPED))
    failed = services.catalog.set_status(video_id, VideoStatus.FAILED, f"{STOPPED}: {reason}")
    if repairs >= MAX_REPAIRS:
        return failed
    return services.ingest.retry(video_id)


def forget_partition(instance: dg.DagsterInstance, video_id: str) -> bool:
    """Remove a deleted lecture's partition (its past runs stay in the run history)."""
    if not instance.has_dynamic_partition(VIDEOS, video_id):
        return False
    instance.delete_dynamic_partition(VIDEOS, video_id)
    return True


def retry_lecture(services: Services, creator_id: str, video_id: str) -> Video:
    """A creator's retry (the API and the web app): their failed lecture, run again."""
    services.catalog.get_video(creator_id, video_id)
    instance = open_instance(services.settings)
    try:
        return retry_video(instance, services, video_id)
    finally:
        instance.dispose()


def delete_lecture_everywhere(services: Services, creator_id: str, video_id: str) -> Video:
    """A creator's delete: files, transcript, vectors and the Dagster partition go; the
    catalog row and the cost records stay."""
    video = delete_lecture(services, creator_id, video_id)
    instance = open_instance(services.settings)
    try:
        forget_partition(instance, video_id)
    finally:
        instance.dispose()
    return video
