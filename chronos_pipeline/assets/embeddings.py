"""The ``embeddings`` asset: one vector per chunk in the LanceDB table of a model.

New uploads are embedded with the model their creator's chat searches. A re-embedding is a
backfill of this asset (job ``reembed_videos``) whose launchpad config names the target
``model``; it runs in batches of videos (the backfill policy: the model loads once per
batch), keeps every lecture ``ready`` on its old vectors meanwhile (a failure leaves a
notice, not a failed lecture), and switches a creator's chat to the new model when the last
of their lectures has it (``lib/reembedding.py``).
"""

from functools import partial
from typing import Any

import dagster as dg
from pydantic import Field

from chronos_pipeline.assets.chunks import chunks
from chronos_pipeline.assets.steps import OWNERS, RETRY_POLICY, cost_metadata, run_step
from chronos_pipeline.checks import vector_check_result, vector_check_specs
from chronos_pipeline.jobs import reembed_job
from chronos_pipeline.lib.costs import attach_run
from chronos_pipeline.lib.embedding_models import PROVIDERS, provider_of
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.lib.ledger import CostSummary
from chronos_pipeline.lib.providers.base import Embedder
from chronos_pipeline.lib.reembedding import embedded_in_run, switch_when_complete
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import embed_video
from chronos_pipeline.partitions import videos_partitions
from chronos_pipeline.pools import EMBEDDING
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.resources.providers import ChatModelResource, EmbedderResource
from chronos_pipeline.resources.stores import LedgerResource
from chronos_pipeline.tags import BACKFILL_TAG, asks_to_reembed

# Videos per run of a backfill: the embedding model loads once per batch; a failed batch
# is retried (from the UI) without paying again for the videos it finished.
VIDEOS_PER_RUN = 10


class EmbeddingsConfig(dg.Config):
    model: str = Field(
        default="",
        description=("Embedding model to embed with. Empty: the model the creator's chat "
                     "searches (what new uploads use). A re-embedding backfill names its "
                     f"target: {', '.join(sorted(PROVIDERS))}."),
    )
    estimate_id: str = Field(
        default="",
        description=("The reembedding_estimate this backfill carries out: each run attaches "
                     "itself, so `chronos costs estimates` shows the estimate against it."),
    )


def _embedder_for(services: Services, resource: EmbedderResource, model: str) -> Embedder:
    provider_of(model)  # an unknown model is a clear error before anything runs
    return resource.embedder() if model == resource.model else services.embedder_for(model)


@dg.asset(partitions_def=videos_partitions, deps=[chunks], retry_policy=RETRY_POLICY,
          check_specs=vector_check_specs, group_name="ingest", kinds={"lancedb"},
          owners=OWNERS, code_version="1", pool=EMBEDDING,
          backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=VIDEOS_PER_RUN))
def embeddings(
    context: dg.AssetExecutionContext, config: EmbeddingsConfig, data: ChronosData,
    ledger: LedgerResource, embedder: EmbedderResource, chat_model: ChatModelResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Chunk vectors in LanceDB; skipped when the model's table already matches the chunks,
    unless the run asks to re-embed (reembed_videos, a backfill, a re-execution,
    chronos/reembed=true) without naming a model."""
    base = data.services().with_providers(embedder=embedder.embedder(), ledger=ledger.ledger())
    asked = asks_to_reembed(context.job_name, dict(context.run.tags), reembed_job.name)
    with_sentences = chat_model.reads_sentence_vectors
    video_ids = list(context.partition_keys)
    if config.estimate_id:
        try:
            attach_run(base.ledger, config.estimate_id, context.run_id,
                       backfill_id=context.run.tags.get(BACKFILL_TAG))
        except ChronosError as exc:
            raise dg.Failure(description=exc.message, allow_retries=False) from exc
    costs = CostSummary()
    failed: dict[str, str] = {}
    per_video: dict[str, Any] = {}
    used: Services = base
    forced: list[str] = []
    for video_id in video_ids:
        video = base.catalog.find_video(video_id)
        target = config.model or base.search_model(video.creator_id)[0].model_id
        try:
            services = base.with_providers(embedder=_embedder_for(base, embedder, target),
                                           ledger=base.ledger)
        except ChronosError as exc:
            raise dg.Failure(description=exc.message, allow_retries=False) from exc
        used = services
        # A run naming a model fills that model's table where it lacks these chunks (a
        # retried or relaunched backfill pays nothing twice); an explicit re-embed without
        # one embeds again with the model chat searches — but never twice in one run.
        force = (asked and not config.model
                 and not embedded_in_run(base.ledger, context.run_id, video_id))
        if force:
            forced.append(video_id)
        try:
            result = run_step(
                context, services, "embedding",
                partial(embed_video, services, video_id, run_id=context.run_id,
                        log=context.log.info, force=force, with_sentences=with_sentences),
                video_id=video_id,
            )
        except dg.Failure as exc:
            failed[video_id] = exc.description or "failed"
            continue
        costs.cost_usd += result.costs.cost_usd
        for unit, quantity in result.costs.quantities.items():
            costs.quantities[unit] = costs.quantities.get(unit, 0.0) + quantity
        switch = switch_when_complete(services, video.creator_id, services.embedder,
                                      with_sentences=with_sentences)
        per_video[video_id] = {**result.metadata, "creator_has_model": f"{switch.done}/"
                               f"{switch.total}", "chat_switched": switch.switched}
        if switch.switched:
            context.log.info(f"every lecture of creator {video.creator_id} has "
                             f"{target} vectors: their chat now searches that model")
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(video_ids)} video(s) failed to embed: "
                        + "; ".join(f"{v}: {why}" for v, why in failed.items()),
            metadata={"failed": ", ".join(failed)}, allow_retries=False,
        )
    metadata: dict[str, Any] = (per_video[video_ids[0]] if len(video_ids) == 1
                                else {"videos": len(video_ids),
                                      "vectors": sum(m.get("vectors", 0)
                                                     for m in per_video.values())})
    return dg.MaterializeResult(
        metadata={**metadata, **cost_metadata(costs), "forced": len(forced),
                  "target_model": config.model or "(each creator's)"},
        check_results=[vector_check_result(used, video_ids)],
    )
