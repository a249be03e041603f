"""Jobs over the video partitions."""

import dagster as dg

from chronos_pipeline.partitions import videos_partitions

ingest_video_job = dg.define_asset_job(
    "ingest_video",
    selection=dg.AssetSelection.groups("ingest"),
    partitions_def=videos_partitions,
    description="Probe, transcribe, chunk and embed one uploaded video; make its playback MP4.",
)
reembed_job = dg.define_asset_job(
    "reembed_videos",
    selection=dg.AssetSelection.assets("embeddings"),
    partitions_def=videos_partitions,
    description="Re-embed videos' chunks (backfill after an embedding model change).",
)
compact_ledger_job = dg.define_asset_job(
    "compact_ledger",
    selection=dg.AssetSelection.assets("ledger_compaction"),
    description="Fold the cost ledger's per-call files into per-day files; reconcile totals.",
)
optimize_vectors_job = dg.define_asset_job(
    "optimize_vectors",
    selection=dg.AssetSelection.assets("vector_maintenance"),
    description="Compact the LanceDB chunk tables, refresh their indexes, prune old versions.",
)
