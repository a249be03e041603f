"""The embedding models Chronos knows, which provider serves each, and which one a
creator's chat searches.

Every model has its own LanceDB table (``lib/vectors.table_name``): a search never mixes
models. A creator's chat searches their ``embedding_model`` (catalog), or the configured
default; a re-embedding switches it only once every ready lecture of the creator has vectors
of the new model (``switch_when_complete``).
"""

from __future__ import annotations

from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.providers.local_embedder import MODEL_ID as LOCAL_MODEL
from chronos_pipeline.lib.providers.openai_embedder import DIMENSIONS as OPENAI_DIMENSIONS

# model id -> provider
PROVIDERS: dict[str, str] = {
    LOCAL_MODEL: "local",
    **{model: "openai" for model in OPENAI_DIMENSIONS},
}


def provider_of(model: str) -> str:
    """The provider serving ``model``; a clear error for a model Chronos does not know."""
    try:
        return PROVIDERS[model]
    except KeyError:
        raise ValidationError(
            f"unknown embedding model {model!r}; choose one of {', '.join(sorted(PROVIDERS))}"
        ) from None
