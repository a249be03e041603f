"""The ``reembedding_estimate`` asset: what re-embedding would cost, before launching it.

An engineer materializes it from the launchpad with the target ``model`` (and optionally a
creator or course), reads the tokens and dollars in its metadata, and launches the
re-embedding backfill of ``embeddings`` with the run config the metadata gives (the model
and this ``estimate_id``): each run of the backfill attaches itself to the estimate, so
``chronos costs estimates`` shows the estimate against its own runs' actual cost.
"""

from typing import Any

import dagster as dg
from pydantic import Field

from chronos_pipeline.assets.steps import OWNERS
from chronos_pipeline.lib.costs import estimate_reembed
from chronos_pipeline.lib.embedding_models import PROVIDERS, provider_of
from chronos_pipeline.lib.errors import ChronosError
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.resources.providers import ChatModelResource
from chronos_pipeline.resources.stores import LedgerResource

SHOWN_VIDEOS = 50


class EstimateConfig(dg.Config):
    model: str = Field(description=f"Target embedding model: {', '.join(sorted(PROVIDERS))}.")
    creator_id: str = Field(default="", description="Only this creator (empty: all).")
    course_id: str = Field(default="", description="Only this course of the creator.")


@dg.asset(group_name="reembedding", kinds={"python", "duckdb"}, owners=OWNERS,
          code_version="1")
def reembedding_estimate(
    context: dg.AssetExecutionContext, config: EstimateConfig, data: ChronosData,
    ledger: LedgerResource, chat_model: ChatModelResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Tokens and dollars of re-embedding every ready lecture of the scope with a model:
    the texts the embeddings step would send, counted with the model's own tokenizer,
    calibrated by what earlier estimated runs billed, priced by the table in force."""
    services = data.services()
    try:
        provider_of(config.model)  # the same message as the backfill's for a model unknown
        estimate = estimate_reembed(
            ledger.ledger(), services.catalog, services.storage, config.model,
            creator_id=config.creator_id or None, course_id=config.course_id or None,
            with_sentences=chat_model.reads_sentence_vectors,
        )
    except ChronosError as exc:
        raise dg.Failure(description=exc.message, allow_retries=False) from exc
    launch = {"ops": {"embeddings": {"config": {"model": estimate.model,
                                                "estimate_id": estimate.estimate_id}}}}
    rows = "\n".join(f"| {v.video_id} | {v.texts} | {v.tokens:,.0f} | ${v.estimated_usd} |"
                     for v in estimate.per_video[:SHOWN_VIDEOS])
    metadata: dict[str, Any] = {
        "estimate_id": estimate.estimate_id,
        "model": estimate.model,
        "provider": estimate.provider,
        "videos": estimate.videos,
        "tokens": dg.MetadataValue.float(round(estimate.tokens, 1)),
        "counted_tokens": estimate.counted_tokens,
        "tokenizer": estimate.tokenizer,
        "calibration": dg.MetadataValue.float(round(estimate.calibration, 4)),
        "estimated_usd": dg.MetadataValue.float(float(estimate.estimated_usd)),
        "price_table_version": estimate.price_table_version,
        "videos_without_chunks": ", ".join(estimate.without_chunks),
        "launch_config": dg.MetadataValue.json(launch),
        "per_video": dg.MetadataValue.md(
            "| video | texts | tokens | USD |\n|---|---|---|---|\n" + rows),
    }
    context.log.info(f"re-embedding {estimate.videos} lecture(s) with {estimate.model}: "
                     f"{estimate.tokens:,.0f} tokens, ${estimate.estimated_usd} (estimate "
                     f"{estimate.estimate_id}); launch the backfill with {launch}")
    return dg.MaterializeResult(metadata=metadata)
