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

# Messages carry a few framing tokens each (role markers, separators) beyond their text.
MESSAGE_OVERHEAD_TOKENS = 16


def at_most_tokens(text: str) -> int:
    """An upper bound of the tokens a byte-level BPE tokenizer (OpenAI's, Anthropic's) makes of
    ``text``: no token is shorter than one byte. Offline there is no tokenizer to count
    exactly, and a budget's hold must not fall short of the bill."""
    return len(text.encode("utf-8"))


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

    def expected_usage(self, duration_s: float) -> Usage:
        """At most what transcribing ``duration_s`` seconds of audio bills (what a budget
        holds before the first request)."""
        return Usage(self.provider, self.model_id, {"audio_second": duration_s}, estimated=True)


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

    def expected_usage(self, texts: Sequence[str]) -> Usage:
        """At most what embedding ``texts`` bills (what a budget holds before the request)."""
        return Usage(self.provider, self.model_id,
                     {"input_token": sum(self.count_tokens(t) for t in texts)}, estimated=True)


@dataclass(frozen=True, eq=False)
class SentenceVectors:
    """One chunk's vectors: a row per sentence, and a row per sentence but the first for
    its window (``windows[i - 1]`` belongs to sentence ``i``)."""

    sentences: np.ndarray
    windows: np.ndarray

    def fits(self, sentence_count: int) -> bool:
        return (sentence_count > 0 and len(self.sentences) == sentence_count
                and len(self.windows) == sentence_count - 1)


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
    # Stored at ingest for the extractive answerer (``sentence_vectors.py``); None for rows
    # written before they were, and for passages that do not come from the vector store.
    vectors: SentenceVectors | None = field(default=None, compare=False, repr=False)


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
    def answer(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = (), *,
        query_vector: np.ndarray | None = None,
    ) -> Iterator[ChatEvent]:
        """Stream an answer from ``passages`` (``history``: the conversation's recent turns,
        oldest first): text deltas, what it cites, then usage.

        ``query_vector`` is the question's embedding the search already made, for a model
        that can use it (the extractive answerer); others ignore it."""

    def expected_usage(self, question: str, passages: Sequence[Passage]) -> list[Usage]:
        """At most what answering bills: the prompt and the longest answer allowed (what a
        budget holds before the request). A model that bills nothing holds nothing."""
        return []

    def complete(self, system: str, prompt: str, *, max_tokens: int) -> Completion | None:
        """One short billed completion (a rewrite, a title); ``None`` for a model that does
        not generate text of its own."""
        return None
