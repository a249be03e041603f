"""Answering a student's question from a creator's lectures, with cited moments and costs.

question → query embedding (once: the extractive answerer reuses it) → LanceDB search scoped
to the creator (and course), with the chunks' stored sentence vectors → passages with titles →
chat model → streamed text, references, usage → ledger + history.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from chronos_pipeline.lib import ids, retrieval
from chronos_pipeline.lib.budgets import Budgets, Reservation, expected_cost
from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.errors import NotFoundError, ValidationError
from chronos_pipeline.lib.ledger import CostSummary, Ledger, Usage
from chronos_pipeline.lib.providers.base import (
    ChatModel,
    Cited,
    Embedder,
    Finished,
    Passage,
    TextDelta,
)
from chronos_pipeline.lib.timefmt import timestamp
from chronos_pipeline.lib.vectors import VectorStore

MAX_QUESTION_CHARS = 2000
TITLE_CHARS = 80


def session_title(question: str) -> str:
    """A session's title from its first question: the question, cut at a word near 80."""
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS].rsplit(" ", 1)[0]
    return (cut or text[:TITLE_CHARS]) + "…"


@dataclass(frozen=True)
class Reference:
    video_id: str
    title: str
    start_s: float
    end_s: float
    timestamp: str
    text: str
    score: float

    @classmethod
    def of(cls, passage: Passage) -> Reference:
        return cls(passage.video_id, passage.title, round(passage.start_s, 2),
                   round(passage.end_s, 2), timestamp(passage.start_s), passage.text,
                   round(passage.score, 4))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnswerDelta:
    text: str


@dataclass(frozen=True)
class AnswerReferences:
    references: list[Reference]


@dataclass(frozen=True)
class AnswerDone:
    session_id: str
    message_id: str
    usage: dict[str, float]
    cost_usd: Decimal


AnswerEvent = AnswerDelta | AnswerReferences | AnswerDone


@dataclass
class Answer:
    answer: str = ""
    references: list[Reference] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    cost_usd: Decimal = Decimal(0)
    session_id: str = ""
    message_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "references": [r.to_json() for r in self.references],
            "usage": self.usage,
            "cost_usd": float(self.cost_usd),
            "session_id": self.session_id,
            "message_id": self.message_id,
        }


class Answering:
    def __init__(
        self,
        *,
        catalog: Catalog,
        vectors: VectorStore,
        embedder: Embedder,
        chat_model: ChatModel,
        ledger: Ledger,
        budgets: Budgets,
        k: int = 5,
        retrieval_mode: str = "vector",
    ) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.chat_model = chat_model
        self.ledger = ledger
        self.budgets = budgets
        self.k = k
        self.retrieval_mode = retrieval_mode

    def validate(
        self, creator_id: str, question: str, course_id: str | None, session_id: str | None,
        student_id: str | None = None,
    ) -> str:
        """Check a request before any work or spend; returns the cleaned question."""
        question = (question or "").strip()
        if not question:
            raise ValidationError("the question is empty")
        if "\x00" in question:
            raise ValidationError("the question contains a NUL character")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValidationError(f"the question is over {MAX_QUESTION_CHARS} characters")
        if course_id is not None:
            self.catalog.get_course(creator_id, course_id)
            if student_id is not None and course_id not in self._scope(student_id):
                raise NotFoundError(f"unknown course {course_id}")
        if session_id is not None:
            self.catalog.get_chat_session(creator_id, session_id, student_id)
        self.budgets.check(creator_id, expected_cost(self.ledger.prices,
                                                     self._expected(question, [])),
                           student_id=student_id, stage="chat")
        return question

    def _expected(self, question: str, passages: Sequence[Passage]) -> list[Usage]:
        """At most what answering bills: the query embedding and the chat request."""
        return [self.embedder.expected_usage([question]),
                *self.chat_model.expected_usage(question, passages)]

    def _scope(self, student_id: str) -> list[str]:
        return self.catalog.enrolled_course_ids(student_id)

    def stream(
        self,
        creator_id: str,
        question: str,
        *,
        course_id: str | None = None,
        session_id: str | None = None,
        student_id: str | None = None,
        message_id: str | None = None,
    ) -> Iterator[AnswerEvent]:
        """``message_id`` lets a caller name the answer before it exists (an OpenAI
        completion id is sent with the first chunk); by default a new one."""
        question = self.validate(creator_id, question, course_id, session_id, student_id)
        # Held before the first provider request, settled when the answer ends or breaks off.
        with self.budgets.reserve(creator_id, self._expected(question, []), stage="chat",
                                  student_id=student_id, ref=session_id) as held:
            yield from self._answer_events(held, creator_id, question, course_id=course_id,
                                           session_id=session_id, student_id=student_id,
                                           message_id=message_id)

    def _answer_events(
        self,
        held: Reservation,
        creator_id: str,
        question: str,
        *,
        course_id: str | None = None,
        session_id: str | None = None,
        student_id: str | None = None,
        message_id: str | None = None,
    ) -> Iterator[AnswerEvent]:
        if session_id is None:
            session_id = self.catalog.create_chat_session(
                creator_id, course_id, student_id, title=session_title(question)).id
        message_id = ids.require(message_id, "message") if message_id else ids.new_id("message")
        self.catalog.add_chat_message(session_id, "user", question)
        costs = CostSummary()
        scope: dict[str, Any] = {"creator_id": creator_id, "chat_session_id": session_id,
                                 "message_id": message_id}
        if student_id is not None:
            # The creator pays; the record names the student who asked.
            scope["student_id"] = student_id
        course_ids = (self._scope(student_id)
                      if student_id is not None and course_id is None else None)

        query, usage = self.embedder.embed([question])
        costs.add(self.ledger.record(usage, stage="query-embed", **scope))
        hits = retrieval.search(self.vectors, question, query[0], creator_id=creator_id,
                                course_id=course_id, k=self.k, course_ids=course_ids,
                                mode=self.retrieval_mode)
        titles = self.catalog.titles(sorted({h.video_id for h in hits}))
        passages = [
            Passage(h.video_id, titles.get(h.video_id, h.video_id), h.start_s, h.end_s, h.text,
                    h.score, h.sentences, h.vectors)
            for h in hits
        ]
        held.cover(self._expected(question, passages), "chat")  # now the prompt is known

        text: list[str] = []
        references: list[Reference] = []
        for event in self.chat_model.answer(question, passages, query_vector=query[0]):
            if isinstance(event, TextDelta):
                text.append(event.text)
                yield AnswerDelta(event.text)
            elif isinstance(event, Cited):
                references = [Reference.of(p) for p in event.passages]
                yield AnswerReferences(references)
            elif isinstance(event, Finished):
                for spent in event.usage:
                    # The answerer's own embedding calls are query embeddings, not chat.
                    stage = "query-embed" if spent.model == self.embedder.model_id else "chat"
                    costs.add(self.ledger.record(spent, stage=stage, **scope))
        self.catalog.add_chat_message(
            session_id, "assistant", "".join(text), [r.to_json() for r in references],
            message_id=message_id,
        )
        self.budgets.record_alerts(creator_id)
        yield AnswerDone(session_id, message_id, costs.quantities, costs.cost_usd)

    def answer(
        self,
        creator_id: str,
        question: str,
        *,
        course_id: str | None = None,
        session_id: str | None = None,
        student_id: str | None = None,
        message_id: str | None = None,
    ) -> Answer:
        result = Answer()
        for event in self.stream(creator_id, question, course_id=course_id,
                                 session_id=session_id, student_id=student_id,
                                 message_id=message_id):
            if isinstance(event, AnswerDelta):
                result.answer += event.text
            elif isinstance(event, AnswerReferences):
                result.references = event.references
            else:
                result.usage = event.usage
                result.cost_usd = event.cost_usd
                result.session_id = event.session_id
                result.message_id = event.message_id
        return result
