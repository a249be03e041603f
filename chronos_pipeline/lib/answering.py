"""Answering a student's question from a creator's lectures, with cited moments and costs.

question (+ the session's recent turns) → a question that stands alone (local rewrite, or
a costed ``rewrite`` call of a generative model) → query embedding (once: the extractive
answerer and the coverage check reuse it) → LanceDB search scoped to the creator (and
course), with the chunks' stored sentence vectors → passages with titles → coverage check
(nothing answers it: "not covered", no references, no chat call) → chat model (sees the
recent turns) → streamed text → references, a generative model's checked claim by claim →
ledger + history (+ a costed ``title`` call for a new session with a generative model).
Every paid call is held against the creator's hard limit before it is made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from chronos_pipeline.lib import ids, retrieval
from chronos_pipeline.lib.budgets import Budgets, Reservation, expected_cost
from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.citations import SUPPORT_MIN, CheckedCitation, check_citations
from chronos_pipeline.lib.conversation import recent_turns, standalone_question
from chronos_pipeline.lib.coverage import COVERAGE_MIN, CoverageCheck
from chronos_pipeline.lib.errors import NotFoundError, ProviderUnavailable, ValidationError
from chronos_pipeline.lib.ledger import CostSummary, Ledger, Usage
from chronos_pipeline.lib.providers.base import (
    ChatModel,
    Cited,
    Embedder,
    Finished,
    Passage,
    TextDelta,
    Turn,
)
from chronos_pipeline.lib.providers.prompt import (
    REWRITE_MAX_TOKENS,
    REWRITE_SYSTEM,
    TITLE_MAX_TOKENS,
    TITLE_SYSTEM,
    one_line,
    rewrite_prompt,
)
from chronos_pipeline.lib.providers.provider_errors import ProviderRefused
from chronos_pipeline.lib.timefmt import seconds_of, timestamp
from chronos_pipeline.lib.vectors import VectorStore

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
TITLE_CHARS = 80
NOT_COVERED = (
    "I could not find this in the lecture videos I can search: nothing in them answers it, "
    "so there is nothing to cite. Try rephrasing, or ask about a topic the lectures cover."
)


def session_title(question: str) -> str:
    """A session's title from its first question: the question, cut at a word near 80."""
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS].rsplit(" ", 1)[0]
    return (cut or text[:TITLE_CHARS]) + "…"


@dataclass(frozen=True)
class Reference:
    """A cited moment: the sentence itself, from its own start time.

    ``verified`` is true when the sentence is quoted word for word (the local answerer) or
    supports the generative answer's ``claim`` that cites it; false for a claim the cited
    sentence does not support or a time the model was not given (then ``video_id`` and
    ``text`` are empty), with ``note`` saying which."""

    video_id: str
    title: str
    start_s: float
    end_s: float
    timestamp: str
    text: str
    score: float
    verified: bool = True
    claim: str = ""
    note: str = ""

    @classmethod
    def of(cls, passage: Passage) -> Reference:
        return cls(passage.video_id, passage.title, round(passage.start_s, 2),
                   round(passage.end_s, 2), timestamp(passage.start_s), passage.text,
                   round(passage.score, 4))

    @classmethod
    def checked(cls, citation: CheckedCitation) -> Reference:
        sentence = citation.sentence
        if sentence is None:
            at = seconds_of(citation.timestamp)
            return cls("", "", at, at, citation.timestamp, "", 0.0, False, citation.claim,
                       citation.reason or "")
        return cls(sentence.video_id, sentence.title, round(sentence.start_s, 2),
                   round(sentence.end_s, 2), timestamp(sentence.start_s), sentence.text,
                   citation.support, citation.verified, citation.claim, citation.reason or "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def merged(references: list[Reference]) -> list[Reference]:
    """One reference per cited sentence; it is verified only if every claim citing it is."""
    out: dict[tuple[str, float, str], Reference] = {}
    for ref in references:
        key = (ref.video_id, ref.start_s, ref.timestamp)
        if key in out and out[key].verified and not ref.verified:
            out[key] = ref
        out.setdefault(key, ref)
    return list(out.values())


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
    title: str | None = None
    covered: bool = True
    # The follow-up was rewritten locally because the model's rewrite call failed.
    rewrite_fell_back: bool = False


AnswerEvent = AnswerDelta | AnswerReferences | AnswerDone


@dataclass
class Answer:
    answer: str = ""
    references: list[Reference] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    cost_usd: Decimal = Decimal(0)
    session_id: str = ""
    message_id: str = ""
    covered: bool = True
    title: str | None = None
    rewrite_fell_back: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "references": [r.to_json() for r in self.references],
            "usage": self.usage,
            "cost_usd": float(self.cost_usd),
            "session_id": self.session_id,
            "message_id": self.message_id,
            "covered": self.covered,
            "title": self.title,
            "rewrite_fell_back": self.rewrite_fell_back,
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
        checker: Embedder | None = None,
        coverage_min: float | None = None,
        support_min: float | None = None,
        search_model: Callable[[str], tuple[Embedder, VectorStore]] | None = None,
    ) -> None:
        """``checker`` is the local embedder that checks coverage and citations at no cost
        (the query embedder by default); ``coverage_min=None`` means the calibrated
        threshold of ``lib.coverage``, a negative one turns the check off."""
        self.catalog = catalog
        self.vectors = vectors
        self.embedder = embedder
        self.chat_model = chat_model
        self.ledger = ledger
        self.budgets = budgets
        self.k = k
        self.retrieval_mode = retrieval_mode
        self.checker = checker or embedder
        minimum = COVERAGE_MIN if coverage_min is None else coverage_min
        self.coverage = CoverageCheck(self.checker, None if minimum < 0 else minimum)
        self.support_min = SUPPORT_MIN if support_min is None else support_min
        # Which embedder and table a creator's chat searches (their re-embedded model once
        # every lecture has it); by default the one given.
        self.search_model = search_model or (lambda _creator: (self.embedder, self.vectors))

    def validate(
        self, creator_id: str, question: str, course_id: str | None, session_id: str | None,
        student_id: str | None = None,
    ) -> tuple[str, str | None]:
        """Check a request before any work or spend; returns the cleaned question and the
        course to answer from: the one asked for, else the session's own (a session started
        in a course stays in it; asking it about another course is refused)."""
        question = (question or "").strip()
        if not question:
            raise ValidationError("the question is empty")
        if "\x00" in question:
            raise ValidationError("the question contains a NUL character")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValidationError(f"the question is over {MAX_QUESTION_CHARS} characters")
        if session_id is not None:
            session = self.catalog.get_chat_session(creator_id, session_id, student_id)
            if session.course_id is not None:
                if course_id is not None and course_id != session.course_id:
                    raise ValidationError(
                        f"chat session {session_id} is about course {session.course_id}, "
                        f"not {course_id}: start a new session for another course")
                course_id = session.course_id
        if course_id is not None:
            self.catalog.get_course(creator_id, course_id)
            if student_id is not None and course_id not in self._scope(student_id):
                raise NotFoundError(f"unknown course {course_id}")
        self.budgets.check(creator_id, expected_cost(self.ledger.prices,
                                                     self._expected(question, [])),
                           student_id=student_id, stage="chat")
        return question, course_id

    def _expected(self, question: str, passages: Sequence[Passage]) -> list[Usage]:
        """At most what answering bills: the query embedding, the chat request and, for a
        generative model, one short call besides (a new session's title, or a follow-up's
        rewrite; at most a request with the question alone)."""
        expected = [self.embedder.expected_usage([question]),
                    *self.chat_model.expected_usage(question, passages)]
        if not self.chat_model.verbatim:
            expected += self.chat_model.expected_usage(question, [])
        return expected

    def _scope(self, student_id: str) -> list[str]:
        return self.catalog.enrolled_course_ids(student_id)

    def history(self, session_id: str) -> list[Turn]:
        """The session's recent turns within the history's token budget, oldest first."""
        turns = [Turn(m.role, m.content) for m in self.catalog.chat_messages(session_id)]
        return recent_turns(turns, self.embedder.count_tokens)

    def standalone(self, question: str, history: list[Turn], record: Any) -> tuple[str, bool]:
        """The question as retrieval should read it: rewritten by a generative model (a
        costed call), or locally without one; and whether the model's call failed and the
        local rewrite stood in for it.

        A failed rewrite call (an outage, a timeout, a refused request) costs the answer
        only its retrieval's precision, not the answer: the local rewrite is what runs
        without a paid model anyway. Nothing is recorded for it: a failed call bills
        nothing. The chat call that follows meets the same provider and fails on its own
        if it must."""
        if not any(t.role == "user" for t in history):
            return question, False
        try:
            rewritten = self.chat_model.complete(
                REWRITE_SYSTEM, rewrite_prompt(question, history),
                max_tokens=REWRITE_MAX_TOKENS)
        except (ProviderUnavailable, ProviderRefused) as exc:
            log.warning("the rewrite call failed, rewriting the follow-up locally: %s",
                        exc.message)
            return standalone_question(question, history), True
        if rewritten is None:
            return standalone_question(question, history), False
        record(rewritten.usage, "rewrite")
        return one_line(rewritten.text, MAX_QUESTION_CHARS) or question, False

    def stream(
        self,
        creator_id: str,
        question: str,
        *,
        course_id: str | None = None,
        session_id: str | None = None,
        student_id: str | None = None,
        message_id: str | None = None,
        history: list[Turn] | None = None,
    ) -> Iterator[AnswerEvent]:
        """``message_id`` lets a caller name the answer before it exists (an OpenAI
        completion id is sent with the first chunk); by default a new one. ``history``
        replaces the session's own turns (a client that sends the conversation itself)."""
        question, course_id = self.validate(creator_id, question, course_id, session_id,
                                            student_id)
        # Held before the first provider request, settled when the answer ends or breaks off.
        with self.budgets.reserve(creator_id, self._expected(question, []), stage="chat",
                                  student_id=student_id, ref=session_id) as held:
            yield from self._answer_events(held, creator_id, question, course_id=course_id,
                                           session_id=session_id, student_id=student_id,
                                           message_id=message_id, history=history)

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
        history: list[Turn] | None = None,
    ) -> Iterator[AnswerEvent]:
        new_session = session_id is None
        if session_id is None:
            session_id = self.catalog.create_chat_session(
                creator_id, course_id, student_id, title=session_title(question)).id
        if history is None:
            history = [] if new_session else self.history(session_id)
        else:
            history = recent_turns(history, self.embedder.count_tokens)
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

        def record(usage: Usage | None, stage: str) -> None:
            if usage is not None:
                costs.add(self.ledger.record(usage, stage=stage, **scope))

        search, fell_back = self.standalone(question, history, record)
        embedder, vectors = self.search_model(creator_id)
        query, embedded = embedder.embed([search])
        record(embedded, "query-embed")
        hits = retrieval.search(vectors, search, query[0], creator_id=creator_id,
                                course_id=course_id, k=self.k, course_ids=course_ids,
                                mode=self.retrieval_mode)
        titles = self.catalog.titles(sorted({h.video_id for h in hits}))
        passages = [
            Passage(h.video_id, titles.get(h.video_id, h.video_id), h.start_s, h.end_s, h.text,
                    h.score, h.sentences, h.vectors)
            for h in hits
        ]
        # Decided before the chat model runs: a paid model spends nothing on it.
        held.cover(self._expected(question, passages), "chat")  # now the prompt is known
        # The stored sentence vectors serve the check when they come from the same model.
        same_model = self.checker.model_id == embedder.model_id
        coverage, checking = self.coverage.check(search, passages,
                                                 query[0] if same_model else None)
        record(checking, "query-embed")

        text: list[str] = []
        references: list[Reference] = []
        if not coverage.covered:
            text.append(NOT_COVERED)
            yield AnswerDelta(NOT_COVERED)
            yield AnswerReferences([])
        else:
            # The local answerer reads the standalone question; a generative one reads the
            # student's own words with the turns before them.
            asked = question if not self.chat_model.verbatim else search
            for event in self.chat_model.answer(asked, passages, history,
                                                query_vector=query[0]):
                if isinstance(event, TextDelta):
                    text.append(event.text)
                    yield AnswerDelta(event.text)
                elif isinstance(event, Cited):
                    if self.chat_model.verbatim:
                        references = [Reference.of(p) for p in event.passages]
                    else:
                        checked, verifying = check_citations(
                            "".join(text), passages, self.checker, self.support_min)
                        record(verifying, "query-embed")
                        references = merged([Reference.checked(c) for c in checked])
                    yield AnswerReferences(references)
                elif isinstance(event, Finished):
                    for spent in event.usage:
                        # The answerer's own embedding calls are query embeddings, not chat.
                        stage = ("query-embed" if spent.model in (
                            embedder.model_id, self.embedder.model_id) else "chat")
                        record(spent, stage)
        self.catalog.add_chat_message(
            session_id, "assistant", "".join(text), [r.to_json() for r in references],
            message_id=message_id,
        )
        title = None
        if new_session and coverage.covered:
            named = self.chat_model.complete(TITLE_SYSTEM, question, max_tokens=TITLE_MAX_TOKENS)
            if named is not None:
                record(named.usage, "title")
                title = one_line(named.text, TITLE_CHARS) or None
                if title:
                    self.catalog.rename_chat_session(session_id, title)
        self.budgets.record_alerts(creator_id)
        yield AnswerDone(session_id, message_id, costs.quantities, costs.cost_usd, title,
                         coverage.covered, fell_back)

    def answer(
        self,
        creator_id: str,
        question: str,
        *,
        course_id: str | None = None,
        session_id: str | None = None,
        student_id: str | None = None,
        message_id: str | None = None,
        history: list[Turn] | None = None,
    ) -> Answer:
        result = Answer()
        for event in self.stream(creator_id, question, course_id=course_id,
                                 session_id=session_id, student_id=student_id,
                                 message_id=message_id, history=history):
            if isinstance(event, AnswerDelta):
                result.answer += event.text
            elif isinstance(event, AnswerReferences):
                result.references = event.references
            else:
                result.usage = event.usage
                result.cost_usd = event.cost_usd
                result.session_id = event.session_id
                result.message_id = event.message_id
                result.covered = event.covered
                result.title = event.title
                result.rewrite_fell_back = event.rewrite_fell_back
        return result
