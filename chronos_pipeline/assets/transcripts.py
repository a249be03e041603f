"""The ``transcript`` asset: segments and word times from the video's audio."""

import time

import dagster as dg

from chronos_pipeline.assets.steps import OWNERS, RETRY_POLICY, cost_metadata, run_step
from chronos_pipeline.assets.videos import video
from chronos_pipeline.checks import transcript_check_results, transcript_check_specs
from chronos_pipeline.lib.steps import transcribe_video
from chronos_pipeline.partitions import videos_partitions
from chronos_pipeline.pools import TRANSCRIPTION
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.resources.providers import TranscriberResource
from chronos_pipeline.resources.stores import LedgerResource

PROGRESS_EVERY_S = 10.0


@dg.asset(partitions_def=videos_partitions, deps=[video], retry_policy=RETRY_POLICY,
          check_specs=transcript_check_specs, group_name="ingest", kinds={"python", "whisper"},
          owners=OWNERS, code_version="1", pool=TRANSCRIPTION)
def transcript(
    context: dg.AssetExecutionContext, data: ChronosData, ledger: LedgerResource,
    transcriber: TranscriberResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """The lecture's words with their times, from faster-whisper (VAD on)."""
    services = data.services().with_providers(
        transcriber=transcriber.transcriber(), ledger=ledger.ledger())
    started = time.monotonic()
    last_report = [0.0]

    def progress(done: float, total: float) -> None:
        now = time.monotonic()
        if now - last_report[0] >= PROGRESS_EVERY_S or done >= total:
            last_report[0] = now
            share = done / total if total else 1.0
            context.log.info(f"transcribed {done:.0f}/{total:.0f} s of audio ({share:.0%})")

    result_transcript, result = run_step(
        context, services, "transcription",
        lambda: transcribe_video(services, context.partition_key, run_id=context.run_id,
                                 on_progress=progress),
    )
    elapsed = time.monotonic() - started
    metadata = {**result.metadata, **cost_metadata(result.costs),
                "wall_time_s": round(elapsed, 2),
                "real_time_factor": round(result_transcript.duration_s / elapsed, 2)
                if elapsed else 0.0}
    return dg.MaterializeResult(metadata=metadata,
                                check_results=transcript_check_results(
                                    result_transcript, context.partition_key))
