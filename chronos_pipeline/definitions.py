"""The only place Chronos registers its Dagster objects.

Each concern is its own typed resource, and this file says which implementation runs:
the transcriber, embedder and chat model named by ``CHRONOS_TRANSCRIBER``,
``CHRONOS_EMBEDDER`` and ``CHRONOS_CHAT_MODEL``; the data directory (catalog, uploads,
transcripts, chunks) with the ledger and the vector store inside it. A value the
environment sets is passed as ``dg.EnvVar`` (the UI shows its source, and secrets never
enter the run config); anything else is the documented default. The launchpad can override
a field for one run — the embedding model of a re-embedding backfill is the ``embeddings``
asset's ``model`` config.
"""

import os
import warnings
from typing import Any

import dagster as dg

from chronos_pipeline.assets.chunks import chunks
from chronos_pipeline.assets.embeddings import embeddings
from chronos_pipeline.assets.ledger import ledger_compaction
from chronos_pipeline.assets.playback import playback
from chronos_pipeline.assets.reembedding_estimate import reembedding_estimate
from chronos_pipeline.assets.transcripts import transcript
from chronos_pipeline.assets.vector_maintenance import vector_maintenance
from chronos_pipeline.assets.videos import video
from chronos_pipeline.executors import executor_def
from chronos_pipeline.jobs import (
    compact_ledger_job,
    ingest_video_job,
    optimize_vectors_job,
    reembed_job,
)
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.resources.providers import (
    AnthropicChatResource,
    ChatModelResource,
    EmbedderResource,
    LocalChatResource,
    LocalEmbedderResource,
    LocalWhisperResource,
    OpenAICompatibleChatResource,
    OpenAIEmbedderResource,
    OpenAITranscriberResource,
    TranscriberResource,
)
from chronos_pipeline.resources.stores import LedgerResource, VectorStoreResource
from chronos_pipeline.schedules.ledger import ledger_compaction_schedule
from chronos_pipeline.schedules.vectors import vector_maintenance_schedule
from chronos_pipeline.sensors.dead_runs import dead_run_worker_sensor
from chronos_pipeline.sensors.run_failures import stopped_run_repair
from chronos_pipeline.sensors.uploads import upload_sensor


def env(name: str, default: Any) -> Any:
    """``dg.EnvVar(name)`` when the environment sets it, else ``default``."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def env_int(name: str, default: int) -> Any:
    return dg.EnvVar.int(name) if os.environ.get(name) else default


# The ingest job runs one lecture per run by design (a sensor run per upload); only the
# embeddings asset batches videos, for re-embedding backfills. Dagster warns about the mix.
warnings.filterwarnings("ignore", message="Asset job ingest_video materializes assets with "
                        "varying BackfillPolicies")

def transcriber_for(settings: Settings) -> TranscriberResource:
    if settings.transcriber == "openai":
        return OpenAITranscriberResource(
            api_key=dg.EnvVar("OPENAI_API_KEY"),
            model=env("CHRONOS_OPENAI_TRANSCRIPTION_MODEL", "whisper-1"),
            base_url=env("CHRONOS_OPENAI_BASE_URL", None),
            max_piece_bytes=env_int("CHRONOS_TRANSCRIPTION_PIECE_BYTES", 24 * 1024 * 1024),
            concurrency=env_int("CHRONOS_TRANSCRIPTION_CONCURRENCY", 3),
            max_retries=env_int("CHRONOS_PROVIDER_MAX_RETRIES", 3),
        )
    return LocalWhisperResource(beam_size=env_int("CHRONOS_WHISPER_BEAM_SIZE", 5),
                                threads=env_int("CHRONOS_WHISPER_THREADS", 2))


def embedder_for(settings: Settings) -> EmbedderResource:
    if settings.embedder == "openai":
        return OpenAIEmbedderResource(
            api_key=dg.EnvVar("OPENAI_API_KEY"),
            model=env("CHRONOS_OPENAI_EMBEDDING_MODEL", "text-embedding-3-small"),
            base_url=env("CHRONOS_OPENAI_BASE_URL", None),
            timeout_s=float(settings.provider_timeout_s),
            max_retries=env_int("CHRONOS_PROVIDER_MAX_RETRIES", 3),
        )
    return LocalEmbedderResource(threads=env_int("CHRONOS_WHISPER_THREADS", 2))


def chat_model_for(settings: Settings) -> ChatModelResource:
    if settings.chat_model == "anthropic":
        return AnthropicChatResource(
            api_key=dg.EnvVar("ANTHROPIC_API_KEY"),
            model=env("CHRONOS_ANTHROPIC_MODEL", "claude-haiku-4-5"),
            base_url=env("CHRONOS_ANTHROPIC_BASE_URL", None),
        )
    if settings.chat_model == "openai-compatible":
        return OpenAICompatibleChatResource(
            model=dg.EnvVar("CHRONOS_CHAT_MODEL_NAME"),
            base_url=dg.EnvVar("CHRONOS_CHAT_BASE_URL"),
            api_key=env("CHRONOS_CHAT_API_KEY", None),
            provider=env("CHRONOS_CHAT_PROVIDER", "openai-compatible"),
        )
    return LocalChatResource()


def definitions_for(settings: Settings) -> dg.Definitions:
    """Chronos's Dagster objects for these settings (the environment's, for ``defs``)."""
    # Configured at launch: a run's config may point it elsewhere (`chronos ingest --wait`
    # and tests run with their own data directory), and the ledger and vector store follow.
    data = ChronosData.configure_at_launch(
        data_dir=env("CHRONOS_DATA_DIR", None),
        database_url=env("CHRONOS_DATABASE_URL", None),
    )
    return dg.Definitions(
        assets=[video, transcript, chunks, embeddings, playback, ledger_compaction,
                vector_maintenance, reembedding_estimate],
        jobs=[ingest_video_job, reembed_job, compact_ledger_job, optimize_vectors_job],
        schedules=[ledger_compaction_schedule, vector_maintenance_schedule],
        sensors=[upload_sensor, stopped_run_repair, dead_run_worker_sensor],
        resources={
            "data": data,
            "ledger": LedgerResource(data=data),
            "vector_store": VectorStoreResource(data=data),
            "transcriber": transcriber_for(settings),
            "embedder": embedder_for(settings),
            "chat_model": chat_model_for(settings),
        },
        executor=executor_def(settings),
    )


settings = Settings.from_env()  # validated: a wrong choice fails loading, with the reason
transcriber = transcriber_for(settings)
embedder = embedder_for(settings)
chat_model = chat_model_for(settings)
defs = definitions_for(settings)
