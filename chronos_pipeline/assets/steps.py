"""How an asset runs a core step: status on failure, Failure for terminal errors, retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from chronos_pipeline.lib.errors import ChronosError, TransientError
from chronos_pipeline.lib.ledger import CostSummary
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import fail_video

T = TypeVar("T")

# Who the Dagster UI names as the assets' owners. Each asset's ``code_version`` changes when
# its step would make a different product from the same input (then Dagster shows the
# partitions made before as stale).
OWNERS = ["team:chronos"]

# Transient errors (a busy table, a rate-limited provider) get three more tries with
# exponential backoff and jitter; terminal ones raise Failure(allow_retries=False).
RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=2.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def run_step(
    context: dg.AssetExecutionContext, services: Services, step: str, work: Callable[[], T],
    *, video_id: str | None = None,
) -> T:
    """``video_id``: the video of a step over several partitions (a batched backfill)."""
    video_id = video_id or context.partition_key
    try:
        return work()
    except TransientError as exc:
        if context.retry_number >= RETRY_POLICY.max_retries:
            fail_video(services, video_id, f"{step} failed after retries: {exc.message}")
        context.log.warning(f"{step}: transient error, will retry: {exc.message}")
        raise
    except ChronosError as exc:
        fail_video(services, video_id, f"{step} failed: {exc.message}")
        raise dg.Failure(description=exc.message, allow_retries=False) from exc
    except Exception as exc:
        if context.retry_number >= RETRY_POLICY.max_retries:
            fail_video(services, video_id, f"{step} failed with an internal error: {exc}")
        raise


def cost_metadata(costs: CostSummary) -> dict[str, Any]:
    metadata: dict[str, Any] = {"cost_usd": dg.MetadataValue.float(float(costs.cost_usd))}
    for unit, quantity in sorted(costs.quantities.items()):
        metadata[f"usage_{unit}"] = dg.MetadataValue.float(float(quantity))
    return metadata
