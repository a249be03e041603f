"""Asset checks: a transcript is speech (not empty, not a decoding loop); every chunk has a
vector.

The checks are partitioned like their assets, so the Checks tab keeps one result per video
(not only the latest video's). Partitioned checks are a preview feature in Dagster 1.13; the
preview warning is silenced here, where that choice is made.
"""

from __future__ import annotations

import warnings
from typing import Any

import dagster as dg

from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import load_chunks
from chronos_pipeline.lib.transcripts import Transcript, repetition_ratio
from chronos_pipeline.partitions import videos_partitions

# Share of repeated 4-grams above which a transcript is a Whisper repetition loop; real
# lectures measured well under 0.2.
MAX_REPETITION = 0.5

with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    transcript_check_specs = [
        dg.AssetCheckSpec("transcript_is_speech", asset="transcript",
                          partitions_def=videos_partitions,
                          description="The transcript has words and is not a repetition loop."),
    ]
    vector_check_specs = [
        dg.AssetCheckSpec("vectors_match_chunks", asset="embeddings",
                          partitions_def=videos_partitions,
                          description="LanceDB holds exactly one vector per chunk of the video."),
    ]


def transcript_check_results(transcript: Transcript, video_id: str) -> list[dg.AssetCheckResult]:
    ratio = repetition_ratio(transcript.text)
    words = transcript.word_count
    return [
        dg.AssetCheckResult(
            check_name="transcript_is_speech",
            passed=words > 0 and ratio <= MAX_REPETITION,
            metadata={"video_id": video_id, "words": words,
                      "repetition_ratio": round(ratio, 3)},
        )
    ]


def vector_check_result(services: Services, video_ids: list[str]) -> dg.AssetCheckResult:
    """One result per step: per video when the step made one partition; for a batch of a
    backfill (several partitions in one step, which Dagster records as one evaluation) it
    passes only if every video's vectors match, and names the ones that do not."""
    counts = {}
    for video_id in video_ids:
        video = services.catalog.find_video(video_id)
        counts[video_id] = (len(load_chunks(services, video)), services.vectors.count(video_id))
    mismatched = [v for v, (chunks, vectors) in counts.items() if chunks != vectors]
    metadata: dict[str, Any] = (
        {"video_id": video_ids[0], "chunks": counts[video_ids[0]][0],
         "vectors": counts[video_ids[0]][1]} if len(video_ids) == 1 else
        {"videos": len(video_ids), "chunks": sum(c for c, _ in counts.values()),
         "vectors": sum(v for _, v in counts.values()), "mismatched": ", ".join(mismatched)}
    )
    metadata["table"] = services.vectors.name
    return dg.AssetCheckResult(check_name="vectors_match_chunks", passed=not mismatched,
                               metadata=metadata)
