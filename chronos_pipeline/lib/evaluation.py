"""Evaluating answers against a question file: is the cited moment the one that answers?

A question file (JSON, documented in README.md; ``samples/lecture/questions.json`` is one)::

    {"questions": [
        {"question": "Who invented RSI?", "answer_at_s": 112.6,
         "video_id": "vd_…",            # optional: the moment must be in this lecture
         "answer_sentence": "…"},        # optional, for people (and the sample's generator)
        {"question": "How do I bake bread?", "off_topic": true},
        {"question": "And when did he do it?", "answer_at_s": 112.6,
         "follow_up_of": 0,              # optional: asked right after question 0 (0-based),
                                         # in the same conversation
         "answer_claim": "…"}            # optional: the answer in other words (benchmarks)
    ]}

Every question is asked through ``Answering`` exactly as a student's would be (same
retrieval, same answerer, same ledger), in one chat session of the creator's named after
the file, so the run's cost is what its session's records say. Definitions, with a moment
*cited* when a reference's ``[start_s - 10 s, end_s + 10 s]`` holds ``answer_at_s`` (and the
reference is in ``video_id`` when one is given):

- hit@1, hit@3: share of covered questions (not follow-ups) whose first / first three
  references cite it;
- follow-up hit@3: the same for follow-ups, each asked right after the question it follows,
  with that turn as the conversation (a follow-up only makes sense with it);
- MRR: mean over covered questions of 1 / the rank of the first reference that cites it
  (0 when none does);
- abstention: share of off-topic questions answered with no reference at all;
- false abstentions: share of covered questions answered with no reference;
- citation precision: of all references shown on covered questions, the share that cite
  the question's moment (a quote from elsewhere in the lecture counts against it);
- unverified references: references shown flagged ``verified: false`` (a generative
  model's claim its cited sentence does not support);
- cost: the sum of the ledger records of the run's session; questions/s: wall time.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from chronos_pipeline.lib.answering import MAX_QUESTION_CHARS, Answering, Reference
from chronos_pipeline.lib.catalog import Catalog
from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.providers.base import Turn

TOLERANCE_S = 10.0
TOP = 3


class Question(msgspec.Struct, forbid_unknown_fields=True):
    question: str
    answer_at_s: float | None = None
    video_id: str | None = None
    off_topic: bool = False
    answer_sentence: str | None = None
    # The 0-based index of an earlier question this one follows in the same conversation.
    follow_up_of: int | None = None
    # The answer in other words than the lecture's (what a generative model would write).
    answer_claim: str | None = None


class QuestionFile(msgspec.Struct, forbid_unknown_fields=True):
    questions: list[Question]
    description: str | None = None

    @property
    def covered(self) -> list[Question]:
        """Covered questions that stand alone (follow-ups need the turn before them)."""
        return [q for q in self.questions if not q.off_topic and q.follow_up_of is None]

    @property
    def follow_ups(self) -> list[Question]:
        return [q for q in self.questions if q.follow_up_of is not None]


def parse_questions(raw: bytes, source: str = "the question file") -> QuestionFile:
    """Decode and check a question file; every problem is a ``ValidationError`` naming it."""
    try:
        # A file saved by an editor that marks UTF-8 with a byte-order mark is still one.
        parsed = msgspec.json.decode(raw.removeprefix(codecs.BOM_UTF8), type=QuestionFile)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"{source} is not a question file: {exc} (expected "
            '{"questions": [{"question": "...", "answer_at_s": 12.5}, ...]})') from exc
    if not parsed.questions:
        raise ValidationError(f"{source} holds no questions")
    for number, q in enumerate(parsed.questions, 1):
        where = f"{source}, question {number}"
        if not q.question.strip():
            raise ValidationError(f"{where}: the question is empty")
        # Refused here, not when its turn comes after the questions before it were paid for.
        if "\x00" in q.question or len(q.question.strip()) > MAX_QUESTION_CHARS:
            raise ValidationError(f"{where}: a question is at most {MAX_QUESTION_CHARS} "
                                  "characters, without NUL")
        if q.off_topic and (q.answer_at_s is not None or q.video_id is not None):
            raise ValidationError(f"{where}: an off-topic question has no answer_at_s or "
                                  "video_id")
        if q.follow_up_of is not None and not 0 <= q.follow_up_of < number - 1:
            raise ValidationError(f"{where}: follow_up_of must be the 0-based index of an "
                                  "earlier question")
        if not q.off_topic and (q.answer_at_s is None or q.answer_at_s < 0):
            raise ValidationError(f"{where}: a covered question needs answer_at_s (seconds "
                                  'into the lecture), or "off_topic": true')
    return parsed


def load_questions(path: Path) -> QuestionFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_questions(raw, str(path))


def cites(reference: Reference, question: Question, tolerance_s: float = TOLERANCE_S) -> bool:
    if question.answer_at_s is None:
        return False
    if question.video_id is not None and reference.video_id != question.video_id:
        return False
    return (reference.start_s - tolerance_s <= question.answer_at_s
            <= reference.end_s + tolerance_s)


@dataclass(frozen=True)
class Outcome:
    """One question's answer: what it cited and where the right moment ranked."""

    question: Question
    references: list[Reference]
    message_id: str
    answer: str = ""

    @property
    def abstained(self) -> bool:
        return not self.references

    @property
    def hits(self) -> list[bool]:
        return [cites(r, self.question) for r in self.references]

    @property
    def rank(self) -> int | None:
        """1-based rank of the first reference that cites the moment."""
        return next((i for i, hit in enumerate(self.hits, 1) if hit), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question.question,
            "off_topic": self.question.off_topic,
            "answer_at_s": self.question.answer_at_s,
            "follow_up_of": self.question.follow_up_of,
            "abstained": self.abstained,
            "rank": self.rank,
            "references": [{"video_id": r.video_id, "start_s": r.start_s, "end_s": r.end_s,
                            "timestamp": r.timestamp, "cites": hit,
                            "verified": r.verified}
                           for r, hit in zip(self.references, self.hits, strict=True)],
            "message_id": self.message_id,
        }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Report:
    outcomes: list[Outcome]
    session_id: str
    seconds: float
    cost_usd: Decimal = Decimal(0)
    ledger_records: int = 0
    course_id: str | None = None
    covered: list[Outcome] = field(init=False)
    follow_ups: list[Outcome] = field(init=False)
    off_topic: list[Outcome] = field(init=False)

    def __post_init__(self) -> None:
        self.covered = [o for o in self.outcomes
                        if not o.question.off_topic and o.question.follow_up_of is None]
        self.follow_ups = [o for o in self.outcomes
                           if not o.question.off_topic and o.question.follow_up_of is not None]
        self.off_topic = [o for o in self.outcomes if o.question.off_topic]

    def hits_at(self, n: int) -> int:
        return sum(1 for o in self.covered if o.rank is not None and o.rank <= n)

    @property
    def follow_up_hits(self) -> int:
        return sum(1 for o in self.follow_ups if o.rank is not None and o.rank <= TOP)

    @property
    def unverified(self) -> int:
        return sum(not r.verified for o in self.outcomes for r in o.references)

    @property
    def mrr(self) -> float | None:
        if not self.covered:
            return None
        return sum(1 / o.rank for o in self.covered if o.rank) / len(self.covered)

    @property
    def abstained_off_topic(self) -> int:
        return sum(o.abstained for o in self.off_topic)

    @property
    def false_abstentions(self) -> int:
        return sum(o.abstained for o in self.covered)

    @property
    def citations(self) -> tuple[int, int]:
        """(references citing their question's moment, references shown) on covered ones."""
        hits = [hit for o in self.covered for hit in o.hits]
        return sum(hits), len(hits)

    @property
    def questions_per_s(self) -> float:
        return len(self.outcomes) / self.seconds if self.seconds > 0 else 0.0

    def metrics(self) -> dict[str, Any]:
        good, shown = self.citations
        covered, off = len(self.covered), len(self.off_topic)
        return {
            "questions": len(self.outcomes),
            "covered": covered,
            "follow_ups": len(self.follow_ups),
            "off_topic": off,
            "hit_at_1": _share(self.hits_at(1), covered),
            "hit_at_3": _share(self.hits_at(TOP), covered),
            "follow_up_hit_at_3": _share(self.follow_up_hits, len(self.follow_ups)),
            "mrr": self.mrr,
            "abstention": _share(self.abstained_off_topic, off),
            "false_abstention": _share(self.false_abstentions, covered),
            "citation_precision": _share(good, shown),
            "unverified_references": self.unverified,
            "cost_usd": float(self.cost_usd),
            "ledger_records": self.ledger_records,
            "seconds": round(self.seconds, 3),
            "questions_per_s": round(self.questions_per_s, 3),
        }

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics(), "tolerance_s": TOLERANCE_S,
                "course_id": self.course_id, "session_id": self.session_id,
                "results": [o.to_json() for o in self.outcomes]}


def evaluate(
    answering: Answering,
    catalog: Catalog,
    ledger: Ledger,
    creator_id: str,
    questions: QuestionFile,
    *,
    course_id: str | None = None,
    name: str = "questions",
) -> Report:
    """Ask every question as the creator, in one session, and score the cited moments.

    Each question is asked on its own (no history), but a follow-up is asked with the
    question it follows and that question's answer as the conversation."""
    catalog.get_creator(creator_id)
    if course_id is not None:
        catalog.get_course(creator_id, course_id)
    session = catalog.create_chat_session(creator_id, course_id, title=f"chronos eval: {name}")
    # The first call loads the embedding model: not a cost of answering, so not timed.
    answering.embedder.embed(["warm up"])
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    for question in questions.questions:
        history: list[Turn] = []
        if question.follow_up_of is not None:
            before = outcomes[question.follow_up_of]
            history = [Turn("user", before.question.question), Turn("assistant", before.answer)]
        answer = answering.answer(creator_id, question.question, course_id=course_id,
                                  session_id=session.id, history=history)
        outcomes.append(Outcome(question, answer.references, answer.message_id,
                                answer.answer))
    seconds = time.perf_counter() - started
    _, rows = ledger.query(
        "SELECT coalesce(sum(cost_usd), 0), count(*) FROM cost_records "
        "WHERE creator_id = ? AND chat_session_id = ?", [creator_id, session.id])
    return Report(outcomes, session.id, seconds, Decimal(rows[0][0]), int(rows[0][1]),
                  course_id)


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole}  {part / whole:.2f}" if whole else "n/a (none in the file)"


def summary_lines(report: Report) -> Sequence[str]:
    """The report as a person reads it."""
    covered, off = len(report.covered), len(report.off_topic)
    good, shown = report.citations
    mrr = report.mrr
    lines = [
        f"{len(report.outcomes)} questions: {covered} covered, {len(report.follow_ups)} "
        f"follow-ups, {off} off-topic "
        f"(a cited moment counts within ±{TOLERANCE_S:g} s)",
        f"  hit@1               {_ratio(report.hits_at(1), covered)}",
        f"  hit@3               {_ratio(report.hits_at(TOP), covered)}",
        f"  follow-up hit@3     {_ratio(report.follow_up_hits, len(report.follow_ups))}",
        f"  MRR                 {'n/a' if mrr is None else f'{mrr:.3f}'}",
        f"  abstained off-topic {_ratio(report.abstained_off_topic, off)}",
        f"  false abstentions   {_ratio(report.false_abstentions, covered)}",
        f"  citation precision  {_ratio(good, shown)}",
        f"  unverified refs     {report.unverified}",
        f"  cost                ${report.cost_usd:.6f} ({report.ledger_records} ledger records)",
        f"  speed               {report.questions_per_s:.2f} questions/s "
        f"({report.seconds:.1f} s)",
    ]
    misses = [o for o in report.covered + report.follow_ups
              if o.rank is None or o.rank > TOP]
    wrong = [o for o in report.off_topic if not o.abstained]
    if misses:
        lines.append("\nnot cited in the top 3:")
        lines += [f"  {o.question.question}  (at {o.question.answer_at_s:.1f} s; cited "
                  f"{', '.join(r.timestamp for r in o.references) or 'nothing'})"
                  for o in misses]
    if wrong:
        lines.append("\noff-topic but answered:")
        lines += [f"  {o.question.question}  (cited "
                  f"{', '.join(r.timestamp for r in o.references)})" for o in wrong]
    return lines
