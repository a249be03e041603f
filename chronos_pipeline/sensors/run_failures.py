"""When an ingest run fails without settling its lecture (its worker died and run monitoring
failed the run, or it was failed by hand), the lecture is queued again or failed with the
reason, instead of staying ``transcribing`` forever."""

import dagster as dg

from chronos_pipeline.jobs import ingest_video_job
from chronos_pipeline.operations import repair_after_stopped_run
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.tags import PARTITION_TAG


@dg.run_failure_sensor(name="stopped_run_repair", monitored_jobs=[ingest_video_job],
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       minimum_interval_seconds=30)
def stopped_run_repair(context: dg.RunFailureSensorContext, data: ChronosData) -> None:
    """Queues again (or fails, with the reason) a lecture whose ingest run failed before the
    pipeline could record the outcome; nothing already paid for is paid again."""
    video_id = context.dagster_run.tags.get(PARTITION_TAG)
    if not video_id:
        return
    run_id = context.dagster_run.run_id
    reason = f"run {run_id} failed: {context.failure_event.message}"
    repaired = repair_after_stopped_run(context.instance, data.services(), video_id, run_id,
                                        reason)
    if repaired is not None:
        context.log.info(f"lecture {video_id} is now {repaired.status.value}")
