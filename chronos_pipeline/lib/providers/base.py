"""The three provider interfaces. Local and cloud implementations slot in behind them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.transcripts import Transcript

ProgressCallback = Callable[[float, float], None]
"""Called with (seconds done, seconds in all) as long work proceeds."""

UsageCallback = Callable[[Usage], None]
"""Called once per billed provider call, as soon as it returns (so it is recorded even if
a later call fails)."""


class Transcriber(ABC):
    provider: str
    model_id: str

    @abstractmethod
    def transcribe(
        self, media: Path, *, on_progress: ProgressCallback | None = None,
        on_usage: UsageCallback | None = None,
    ) -> tuple[Transcript, Usage]:
        """Transcribe the audio of ``media`` (segments and word times, in media seconds).

        Returns the transcript and the total usage; ``on_usage`` sees each billed call.
        """


class Embedder(ABC):
    provider: str
    model_id: str
    dimension: int
    max_tokens: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, Usage]:
        """Unit-length vectors, one row per text, and the usage to bill."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the model would see for ``text`` (before truncation)."""


@dataclass(frozen=True)
class Passage:
    """A piece of a lecture offered to, or quoted by, a chat model."""

    video_id: str
    title: str
    start_s: float
    end_s: float
    text: str
    score: float
    sentences: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation: ``role`` is ``user`` or ``assistant``."""

    role: str
    text: str


@dataclass(frozen=True)
class Completion:
    """A short non-streamed answer (a rewritten question, a title) and what it cost."""

    text: str
    usage: Usage


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Cited:
    """The passages the answer actually rests on."""

    passages: list[Passage]


@dataclass(frozen=True)
class Finished:
    usage: list[Usage]


ChatEvent = TextDelta | Cited | Finished


class ChatModel(ABC):
    provider: str
    model_id: str
    # True when every citation is the cited sentence itself, quoted word for word (nothing
    # to verify); a generative model's citations are checked claim by claim instead.
    verbatim: bool = False

    @abstractmethod
    def answer(self, question: str, passages: Sequence[Passage],
               history: Sequence[Turn] = ()) -> Iterator[ChatEvent]:
        """Stream an answer from ``passages`` (``history``: the conversation's recent turns,
        oldest first): text deltas, what it cites, then usage."""

    def complete(self, system: str, prompt: str, *, max_tokens: int) -> Completion | None:
        """One short billed completion (a rewrite, a title); ``None`` for a model that does
        not generate text of its own."""
        return None
