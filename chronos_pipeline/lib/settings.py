"""Settings, read once from the environment.

Every path Chronos writes lives under one data directory (``CHRONOS_DATA_DIR``, default
``./data``), so two checkouts or two test runs never share state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from chronos_pipeline.lib.errors import ConfigurationError

GIB = 1024**3
# How a Dagster run executes its steps (chronos_pipeline/executors.py): all in the run's own
# process (one model load, the default), one process per step, or on Celery workers.
EXECUTORS = ("in_process", "multiprocess", "celery")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc


def _coverage_min(env: Mapping[str, str]) -> float | None:
    raw = env.get("CHRONOS_COVERAGE_MIN", "").strip().lower()
    if not raw:
        return None
    return -1.0 if raw == "off" else _float(env, "CHRONOS_COVERAGE_MIN", 0.0)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigurationError(
            f"{name}={value!r} is not available; choose one of {', '.join(choices)}"
        )


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one Chronos deployment."""

    data_dir: Path
    database_url: str | None = None
    dagster_pg_url: str | None = None
    upload_max_bytes: int = 5 * GIB
    # An unfinished upload is forgotten this long after its last accepted chunk.
    upload_ttl_s: int = 24 * 3600
    upload_clean_interval_s: int = 600
    # The web uploader sends this many bytes per request; a dropped one resends at most it.
    upload_chunk_bytes: int = 8 * 1024 * 1024
    # How often the API folds the ledger's small files (the Dagster schedule does too).
    ledger_compact_interval_s: int = 300
    transcriber: str = "local"
    embedder: str = "local"
    chat_model: str = "local"
    executor: str = "in_process"
    whisper_beam_size: int = 5
    whisper_threads: int = 2
    chunk_words: int = 120
    chunk_overlap_words: int = 30
    retrieval_k: int = 5
    # "vector" or "hybrid" (vector fused with full-text search; lib/retrieval.py).
    retrieval: str = "vector"
    # Best question-to-sentence similarity below which a question is "not covered" (None:
    # the calibrated default of lib/coverage.py; "off" in the environment, stored as -1).
    coverage_min: float | None = None
    min_duration_s: float = 1.0
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_embedding_model: str = "text-embedding-3-small"
    openai_transcription_model: str = "whisper-1"
    transcription_piece_bytes: int = 24 * 1024 * 1024
    transcription_concurrency: int = 3
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-haiku-4-5"
    chat_base_url: str | None = None
    chat_model_name: str | None = None
    chat_api_key: str | None = field(default=None, repr=False)
    chat_provider: str = "openai-compatible"
    provider_timeout_s: float = 60.0
    provider_max_retries: int = 3
    # Dagster's Celery executor (CHRONOS_EXECUTOR=celery): where steps are queued, where
    # their results come back, and the queue the workers listen on.
    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    celery_backend_url: str = "redis://127.0.0.1:6379/0"
    celery_queue: str = "dagster"
    # How long a step's message stays taken by a worker that does not finish it before
    # another worker runs it: it must exceed the longest step (see celery_executor.py).
    celery_visibility_timeout_s: int = 3600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("CHRONOS_DATA_DIR") or "data").expanduser().resolve()
        broker = env.get("CHRONOS_CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0"
        settings = cls(
            data_dir=data_dir,
            database_url=env.get("CHRONOS_DATABASE_URL") or None,
            dagster_pg_url=env.get("CHRONOS_DAGSTER_PG_URL") or None,
            upload_max_bytes=_int(env, "CHRONOS_UPLOAD_MAX_BYTES", 5 * GIB),
            upload_ttl_s=_int(env, "CHRONOS_UPLOAD_TTL_S", 24 * 3600),
            upload_clean_interval_s=_int(env, "CHRONOS_UPLOAD_CLEAN_INTERVAL_S", 600),
            upload_chunk_bytes=_int(env, "CHRONOS_UPLOAD_CHUNK_BYTES", 8 * 1024 * 1024),
            ledger_compact_interval_s=_int(env, "CHRONOS_LEDGER_COMPACT_INTERVAL_S", 300),
            transcriber=env.get("CHRONOS_TRANSCRIBER", "local"),
            embedder=env.get("CHRONOS_EMBEDDER", "local"),
            chat_model=env.get("CHRONOS_CHAT_MODEL", "local"),
            executor=env.get("CHRONOS_EXECUTOR") or "in_process",
            whisper_beam_size=_int(env, "CHRONOS_WHISPER_BEAM_SIZE", 5),
            whisper_threads=_int(env, "CHRONOS_WHISPER_THREADS", 2),
            chunk_words=_int(env, "CHRONOS_CHUNK_WORDS", 120),
            chunk_overlap_words=_int(env, "CHRONOS_CHUNK_OVERLAP_WORDS", 30),
            retrieval_k=_int(env, "CHRONOS_RETRIEVAL_K", 5),
            retrieval=env.get("CHRONOS_RETRIEVAL") or "vector",
            coverage_min=_coverage_min(env),
            min_duration_s=_float(env, "CHRONOS_MIN_DURATION_S", 1.0),
            api_host=env.get("CHRONOS_API_HOST", "127.0.0.1"),
            api_port=_int(env, "CHRONOS_API_PORT", 8000),
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("CHRONOS_OPENAI_BASE_URL") or None,
            openai_embedding_model=env.get("CHRONOS_OPENAI_EMBEDDING_MODEL",
                                           "text-embedding-3-small"),
            openai_transcription_model=env.get("CHRONOS_OPENAI_TRANSCRIPTION_MODEL",
                                               "whisper-1"),
            transcription_piece_bytes=_int(env, "CHRONOS_TRANSCRIPTION_PIECE_BYTES",
                                           24 * 1024 * 1024),
            transcription_concurrency=_int(env, "CHRONOS_TRANSCRIPTION_CONCURRENCY", 3),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
            anthropic_base_url=env.get("CHRONOS_ANTHROPIC_BASE_URL") or None,
            anthropic_model=env.get("CHRONOS_ANTHROPIC_MODEL", "claude-haiku-4-5"),
            chat_base_url=env.get("CHRONOS_CHAT_BASE_URL") or None,
            chat_model_name=env.get("CHRONOS_CHAT_MODEL_NAME") or None,
            chat_api_key=env.get("CHRONOS_CHAT_API_KEY") or None,
            chat_provider=env.get("CHRONOS_CHAT_PROVIDER", "openai-compatible"),
            provider_max_retries=_int(env, "CHRONOS_PROVIDER_MAX_RETRIES", 3),
            provider_timeout_s=float(_int(env, "CHRONOS_PROVIDER_TIMEOUT_S", 60)),
            celery_broker_url=broker,
            celery_backend_url=env.get("CHRONOS_CELERY_BACKEND_URL") or broker,
            celery_queue=env.get("CHRONOS_CELERY_QUEUE") or "dagster",
            celery_visibility_timeout_s=_int(env, "CHRONOS_CELERY_VISIBILITY_TIMEOUT_S", 3600),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.upload_max_bytes <= 0:
            raise ConfigurationError("CHRONOS_UPLOAD_MAX_BYTES must be positive")
        if not 64 * 1024 <= self.upload_chunk_bytes <= 512 * 1024 * 1024:
            raise ConfigurationError("CHRONOS_UPLOAD_CHUNK_BYTES must be 64 KiB to 512 MiB")
        if self.upload_ttl_s <= 0:
            raise ConfigurationError("CHRONOS_UPLOAD_TTL_S must be a positive number of seconds")
        if self.upload_clean_interval_s <= 0:
            raise ConfigurationError(
                "CHRONOS_UPLOAD_CLEAN_INTERVAL_S must be a positive number of seconds"
            )
        if self.celery_visibility_timeout_s <= 0:
            raise ConfigurationError(
                "CHRONOS_CELERY_VISIBILITY_TIMEOUT_S must be a positive number of seconds"
            )
        if self.ledger_compact_interval_s <= 0:
            raise ConfigurationError(
                "CHRONOS_LEDGER_COMPACT_INTERVAL_S must be a positive number of seconds"
            )
        if not 0 <= self.chunk_overlap_words < self.chunk_words:
            raise ConfigurationError(
                "CHRONOS_CHUNK_OVERLAP_WORDS must be at least 0 and below CHRONOS_CHUNK_WORDS"
            )
        if not self.min_duration_s >= 0:
            raise ConfigurationError("CHRONOS_MIN_DURATION_S must be zero or more seconds")
        for name, value, choices in (
            ("CHRONOS_TRANSCRIBER", self.transcriber, ("local", "openai")),
            ("CHRONOS_EMBEDDER", self.embedder, ("local", "openai")),
            ("CHRONOS_RETRIEVAL", self.retrieval, ("vector", "hybrid")),
            ("CHRONOS_EXECUTOR", self.executor, EXECUTORS),
            ("CHRONOS_CHAT_MODEL", self.chat_model,
             ("local", "anthropic", "openai-compatible")),
        ):
            _check_choice(name, value, choices)
        if self.transcriber == "openai":
            if not self.openai_api_key:
                raise ConfigurationError("CHRONOS_TRANSCRIBER=openai needs OPENAI_API_KEY")
            if self.openai_transcription_model != "whisper-1":
                raise ConfigurationError(
                    "only whisper-1 returns the segment and word times citations need; "
                    f"CHRONOS_OPENAI_TRANSCRIPTION_MODEL={self.openai_transcription_model!r} "
                    "is not supported yet"
                )
        if self.embedder == "openai" and not self.openai_api_key:
            raise ConfigurationError("CHRONOS_EMBEDDER=openai needs OPENAI_API_KEY")
        if self.chat_model == "openai-compatible" and not (
            self.chat_base_url and self.chat_model_name
        ):
            raise ConfigurationError(
                "CHRONOS_CHAT_MODEL=openai-compatible needs CHRONOS_CHAT_BASE_URL and "
                "CHRONOS_CHAT_MODEL_NAME (e.g. http://127.0.0.1:11434/v1 and llama3.2)"
            )
        if self.chat_model == "anthropic" and not self.anthropic_api_key:
            raise ConfigurationError("CHRONOS_CHAT_MODEL=anthropic needs ANTHROPIC_API_KEY")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def lancedb_dir(self) -> Path:
        return self.data_dir / "lancedb"

    @property
    def ledger_dir(self) -> Path:
        return self.data_dir / "ledger"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    @property
    def catalog_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'catalog.sqlite3'}"
