"""The only place Chronos registers its Dagster objects."""

import dagster as dg

from chronos_pipeline.assets.chunks import chunks
from chronos_pipeline.assets.embeddings import embeddings
from chronos_pipeline.assets.ledger import ledger_compaction
from chronos_pipeline.assets.playback import playback
from chronos_pipeline.assets.transcripts import transcript
from chronos_pipeline.assets.vector_maintenance import vector_maintenance
from chronos_pipeline.assets.videos import video
from chronos_pipeline.jobs import (
    compact_ledger_job,
    ingest_video_job,
    optimize_vectors_job,
    reembed_job,
)
from chronos_pipeline.resources.chronos import ChronosResource
from chronos_pipeline.schedules.ledger import ledger_compaction_schedule
from chronos_pipeline.schedules.vectors import vector_maintenance_schedule
from chronos_pipeline.sensors.run_failures import stopped_run_repair
from chronos_pipeline.sensors.uploads import upload_sensor

defs = dg.Definitions(
    assets=[video, transcript, chunks, embeddings, playback, ledger_compaction,
            vector_maintenance],
    jobs=[ingest_video_job, reembed_job, compact_ledger_job, optimize_vectors_job],
    schedules=[ledger_compaction_schedule, vector_maintenance_schedule],
    sensors=[upload_sensor, stopped_run_repair],
    resources={"chronos": ChronosResource()},
)
