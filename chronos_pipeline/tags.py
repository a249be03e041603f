"""Run tag names: Dagster's documented system tags (spelled out, since Dagster exports no
public constants for them) and Chronos's own, which a Dagster user filters runs by."""

# Set by Dagster.
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
PARTITION_TAG = "dagster/partition"
BACKFILL_TAG = "dagster/backfill"
PARENT_RUN_ID_TAG = "dagster/parent_run_id"
# Only on runs the daemon re-executes by itself (run retries), never on a user's re-execution.
RETRY_NUMBER_TAG = "dagster/retry_number"

# Set by Chronos on every ingest run (the sensor's and ``chronos ingest --wait``'s).
CREATOR_ID_TAG = "chronos/creator_id"
CREATOR_TAG = "chronos/creator"
LECTURE_TAG = "chronos/lecture"
# An engineer's explicit ask: embed again even though the vectors match the chunks.
REEMBED_TAG = "chronos/reembed"
# Runs executed inside a Chronos process (no daemon): where, so a dead one is recognised.
EXECUTOR_TAG = "chronos/executor"
EXECUTOR_HOST_TAG = "chronos/host"
EXECUTOR_PID_TAG = "chronos/pid"
IN_PROCESS = "in-process"


def asks_to_reembed(job_name: str, tags: dict[str, str], reembed_job_name: str) -> bool:
    """Whether a run is an engineer's explicit ask to embed again: the re-embed job, a
    backfill, a re-execution started by hand, or the ``chronos/reembed=true`` tag."""
    if job_name == reembed_job_name or BACKFILL_TAG in tags:
        return True
    if PARENT_RUN_ID_TAG in tags and RETRY_NUMBER_TAG not in tags:
        return True
    return tags.get(REEMBED_TAG, "").strip().lower() in {"true", "1", "yes"}
