"""Answers students can trust: calibrate on some lectures, report on others.

Two libraries, each a creator's lectures embedded with the local embedder through the same
chunking and ``VectorStore`` as ingest:

- calibration: the sample lecture (transcribed by the local Whisper model) and the held-out
  hashing lecture; the thresholds and the local rewrite method are chosen here;
- report: the held-out photosynthesis and French Revolution lectures, never tuned on.

Each lecture's question file (``chronos eval`` format) has covered questions, off-topic
ones (covered by no lecture of its library) and follow-ups (``follow_up_of``). Printed:

1. coverage ("not covered" answers): the question-to-sentence score of every question
   (follow-ups made to stand alone), the threshold chosen on the calibration library (the
   lowest that abstains on the most off-topic questions with at most 5 % of covered ones
   refused), and abstention on off-topic / false abstention on covered questions in the
   report library, with that threshold and with ``lib.coverage.COVERAGE_MIN``;
2. follow-ups: hit@3 of the local answerer's references for each local rewrite method of
   ``lib.conversation`` (``none`` = without the session), and the same methods on covered
   questions asked right after an unrelated one (what a rewrite costs when the topic
   changes);
3. citations: a loopback Anthropic server plays a model that reads the excerpts it is given
   and cites, for every covered question, the right excerpt, a wrong one, the right one for
   another question's claim, and a time it was not given; citation precision (right among
   those marked verified) and recall with the shipped thresholds and with the strict ones
   (no wrong citation verified on calibration), on both libraries;
4. ``chronos eval`` (``lib.evaluation``) through ``Answering`` as shipped, on the report
   lectures.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.trust [--sample-transcript TRANSCRIPT_JSON]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

from chronos_pipeline.lib import citations, coverage, evaluation
from chronos_pipeline.lib.answering import Answering
from chronos_pipeline.lib.chunking import chunk_transcript
from chronos_pipeline.lib.conversation import DEFAULT_METHOD, METHODS, standalone_question
from chronos_pipeline.lib.coverage import CoverageCheck
from chronos_pipeline.lib.evaluation import Question, cites
from chronos_pipeline.lib.providers.anthropic_chat import AnthropicChatModel
from chronos_pipeline.lib.providers.base import Cited, Passage, Turn
from chronos_pipeline.lib.providers.extractive_chat import ExtractiveChatModel
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.timefmt import timestamp
from chronos_pipeline.lib.transcripts import Transcript
from tests.loopback import loopback

REPO = Path(__file__).resolve().parents[1]
HELDOUT = REPO / "benchmarks" / "heldout"
SAMPLE = REPO / "samples" / "lecture"
MAX_FALSE_ABSTENTION = 0.05
NOT_GIVEN_TIME = "59:59"
_EXCERPT = re.compile(r"^\[(\d+(?::\d{2}){1,2})\] \(.*?\)\n(.*?)(?=\n\n\[\d|\Z)", re.S | re.M)
_NORM = re.compile(r"[^a-z0-9 ]")


@dataclass
class Lecture:
    name: str
    transcript: Transcript
    questions: list[Question]
    video_id: str = ""


@dataclass
class Library:
    name: str
    lectures: list[Lecture]
    creator_id: str = ""

    @property
    def questions(self) -> list[tuple[Lecture, int, Question]]:
        return [(lec, i, q) for lec in self.lectures for i, q in enumerate(lec.questions)]


@dataclass
class Scored:
    question: Question
    score: float


@dataclass
class CitationCase:
    kind: str  # right | wrong-passage | wrong-claim | not-given
    verified: bool  # as shipped, through Answering and the loopback server
    support: float
    margin: float
    given: bool

    def passes(self, threshold: float, margin: float) -> bool:
        return self.given and self.support >= threshold and self.margin >= -margin


@dataclass
class Bench:
    services: Services
    answering: Answering
    # Retrieval and the local answer depend only on the library and the question's text.
    retrieved: dict[tuple[str, str], list[Passage]] = field(default_factory=dict)
    answered: dict[tuple[str, str], tuple[list[Passage], str]] = field(default_factory=dict)


def load_lecture(name: str, transcript: Path, questions: Path) -> Lecture:
    parsed = evaluation.load_questions(questions)
    return Lecture(name, Transcript.from_json(json.loads(transcript.read_text("utf-8"))),
                   list(parsed.questions))


def sample_transcript(path: Path | None) -> Path:
    if path is not None:
        return path
    from chronos_pipeline.lib.providers.local_whisper import LocalWhisperTranscriber

    began = time.perf_counter()
    transcript, _ = LocalWhisperTranscriber().transcribe(SAMPLE / "lecture.mp4")
    out = Path(tempfile.mkdtemp(prefix="chronos-trust-")) / "sample.json"
    out.write_text(json.dumps(transcript.to_json("vd_sample")), "utf-8")
    print(f"transcribed the sample lecture in {time.perf_counter() - began:.0f} s")
    return out


def store(bench: Bench, library: Library) -> None:
    services = bench.services
    creator, _ = services.catalog.create_creator(f"trust {library.name}")
    library.creator_id = creator.id
    for lecture in library.lectures:
        video = services.catalog.create_video(creator.id, lecture.name)
        lecture.video_id = video.id
        chunks = chunk_transcript(lecture.transcript, target_words=120, overlap_words=30)
        vectors, _ = services.embedder.embed([c.text for c in chunks])
        services.vectors.replace_video(creator_id=creator.id, video_id=video.id,
                                       course_id=None, chunks=chunks, vectors=vectors)
        # A moment counts only in its own lecture.
        lecture.questions = [q if q.off_topic else msgspec.structs.replace(q, video_id=video.id)
                             for q in lecture.questions]


def passages_for(bench: Bench, library: Library, question: str) -> list[Passage]:
    """What ``Answering`` retrieves for a (standalone) question."""
    key = (library.creator_id, question)
    if key not in bench.retrieved:
        bench.retrieved[key] = _retrieve(bench, library, question)
    return bench.retrieved[key]


def _retrieve(bench: Bench, library: Library, question: str) -> list[Passage]:
    services = bench.services
    vector, _ = services.embedder.embed([question])
    hits = services.vectors.search(vector[0], creator_id=library.creator_id, k=bench.answering.k)
    titles = services.catalog.titles(sorted({h.video_id for h in hits}))
    return [Passage(h.video_id, titles.get(h.video_id, h.video_id), h.start_s, h.end_s, h.text,
                    h.score, h.sentences) for h in hits]


def answered(bench: Bench, library: Library, question: str) -> tuple[list[Passage], str]:
    """The local answerer's references and text for a (standalone) question."""
    key = (library.creator_id, question)
    if key not in bench.answered:
        bench.answered[key] = quoted(bench, question, passages_for(bench, library, question))
    return bench.answered[key]


def quoted(bench: Bench, question: str, passages: Sequence[Passage]) -> tuple[list[Passage], str]:
    model = bench.answering.chat_model
    assert isinstance(model, ExtractiveChatModel)
    cited: list[Passage] = []
    text: list[str] = []
    for event in model.answer(question, passages):
        if isinstance(event, Cited):
            cited = event.passages
        elif hasattr(event, "text"):
            text.append(event.text)
    return cited, "".join(text)


def history_of(bench: Bench, library: Library, base: Question) -> list[Turn]:
    """The turn a follow-up is asked after: the base question and the local answer to it."""
    _, answer = answered(bench, library, base.question)
    return [Turn("user", base.question), Turn("assistant", answer)]


def hit3(question: Question, passages: Sequence[Passage]) -> bool:
    from chronos_pipeline.lib.answering import Reference

    return any(cites(Reference.of(p), question) for p in passages[:3])


# 1. coverage ------------------------------------------------------------------------------
def coverage_scores(bench: Bench, library: Library) -> list[Scored]:
    check = CoverageCheck(bench.answering.checker)
    scored = []
    for lecture, _, q in library.questions:
        history = ([] if q.follow_up_of is None
                   else history_of(bench, library, lecture.questions[q.follow_up_of]))
        search = standalone_question(q.question, history)
        score, _ = check.score(search, passages_for(bench, library, search))
        scored.append(Scored(q, score))
    return scored


def rates(scored: Sequence[Scored], threshold: float) -> tuple[int, int, int, int]:
    """(off-topic abstained, off-topic, covered abstained, covered)."""
    off = [s for s in scored if s.question.off_topic]
    covered = [s for s in scored if not s.question.off_topic]
    return (sum(s.score < threshold for s in off), len(off),
            sum(s.score < threshold for s in covered), len(covered))


def calibrate_coverage(scored: Sequence[Scored]) -> float:
    values = sorted({round(s.score, 4) for s in scored})
    candidates = [(a + b) / 2 for a, b in itertools.pairwise(values)]
    best: tuple[int, float] = (-1, 0.0)
    for threshold in candidates:
        abstained, _, refused, covered = rates(scored, threshold)
        if refused <= MAX_FALSE_ABSTENTION * covered and abstained > best[0]:
            best = (abstained, threshold)
    return round(best[1], 3)


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.0%})" if whole else "n/a"


def report_coverage(bench: Bench, calibration: Library, held_out: Library) -> None:
    print("== 1. not covered: abstain when the best question-to-sentence similarity is low")
    cal = coverage_scores(bench, calibration)
    rep = coverage_scores(bench, held_out)
    chosen = calibrate_coverage(cal)
    for name, scored in (("calibration", cal), ("report", rep)):
        for threshold, label in ((chosen, "calibrated"),
                                 (coverage.COVERAGE_MIN, "COVERAGE_MIN")):
            abstained, off, refused, covered = rates(scored, threshold)
            print(f"  {name:11} {label:12} {threshold:.3f}: off-topic abstained "
                  f"{share(abstained, off)}, false abstentions {share(refused, covered)}")
    print("  report misses:")
    for s in sorted(rep, key=lambda s: s.score):
        wrong = (s.score >= coverage.COVERAGE_MIN) == s.question.off_topic
        if wrong:
            kind = "off-topic answered" if s.question.off_topic else "covered refused"
            print(f"    {kind:18} {s.score:.3f}  {s.question.question}")


# 2. follow-ups ----------------------------------------------------------------------------
def follow_up_hits(bench: Bench, library: Library, method: str) -> tuple[int, int, int, int]:
    """(follow-ups hit, follow-ups, topic changes hit, topic changes)."""
    follow = changed = follow_hit = changed_hit = 0
    previous: Question | None = None
    for lecture, _, q in library.questions:
        if q.off_topic:
            continue
        if q.follow_up_of is not None:
            base = lecture.questions[q.follow_up_of]
            history = history_of(bench, library, base)
            follow += 1
        elif previous is not None:
            history = history_of(bench, library, previous)
            changed += 1
        else:
            previous = q
            continue
        search = standalone_question(q.question, history, method)
        cited, _ = answered(bench, library, search)
        if q.follow_up_of is not None:
            follow_hit += hit3(q, cited)
        else:
            changed_hit += hit3(q, cited)
            previous = q
    return follow_hit, follow, changed_hit, changed


def report_follow_ups(bench: Bench, calibration: Library, held_out: Library) -> None:
    print("\n== 2. follow-ups: hit@3 of the references, by local rewrite method "
          "('none' = without the session)")
    best: dict[str, tuple[int, int]] = {}
    for library in (calibration, held_out):
        for method in METHODS:
            fh, f, ch, c = follow_up_hits(bench, library, method)
            if library is calibration:
                best[method] = (fh, ch)
            mark = "  (default)" if method == DEFAULT_METHOD else ""
            print(f"  {library.name:11} {method:30} follow-ups {share(fh, f):12} "
                  f"after an unrelated question {share(ch, c)}{mark}")
    # The rule: most follow-ups found on calibration, then the least harm on topic changes.
    chosen = max(best, key=lambda m: best[m])
    print(f"  chosen on calibration: {chosen} (shipped default: {DEFAULT_METHOD})")


# 3. citations -----------------------------------------------------------------------------
def _norm(text: str) -> str:
    return " ".join(_NORM.sub(" ", text.lower()).split())


def excerpts(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The (time, text) excerpts an Anthropic request carries."""
    content = body["messages"][-1]["content"]
    block = next(part["text"] for part in content if part["text"].startswith("Lecture"))
    return [(m.group(1), m.group(2)) for m in _EXCERPT.finditer(block)]


def _opening(sentence: str | None) -> str:
    return _norm(" ".join((sentence or "").rstrip(" …").split()[:5]))


class Player:
    """A model that reads the excerpts it is given and cites them, rightly or wrongly."""

    def __init__(self, question: Question, lecture: Sequence[Question]) -> None:
        self.claim = question.answer_claim or ""
        self.phrase = _opening(question.answer_sentence)
        self.others = [o for o in lecture if not o.off_topic and o.answer_claim
                       and _opening(o.answer_sentence) != self.phrase]

    def playing(self, kind: str) -> Callable[[dict[str, Any]], str]:
        # A request that does not stream is the new session's title call.
        return lambda body: self.reply(kind, body) if body.get("stream") else "A title"

    def reply(self, kind: str, body: dict[str, Any]) -> str:
        given = excerpts(body)
        right = next((t for t, text in given if self.phrase in _norm(text)), None)
        if right is None:
            return "The excerpts do not say."
        if kind == "right":
            return f"{self.claim} [{right}]."
        if kind == "wrong-passage":
            wrong = next((t for t, text in given if self.phrase not in _norm(text)), None)
            return f"{self.claim} [{wrong or NOT_GIVEN_TIME}]."
        if kind == "wrong-claim":
            right_text = _norm(dict(given)[right])
            other = next((o for o in self.others
                          if _opening(o.answer_sentence) not in right_text), None)
            if other is None:
                return "The excerpts do not say."
            return f"{other.answer_claim} [{right}]."
        return f"{self.claim} [{NOT_GIVEN_TIME}]."


def citation_cases(bench: Bench, library: Library, threshold: float) -> list[CitationCase]:
    cases: list[CitationCase] = []
    with loopback() as server:
        model = AnthropicChatModel(api_key="sk-ant-bench", base_url=server.base_url,
                                   timeout_s=30, max_retries=0)
        answering = Answering(catalog=bench.services.catalog, vectors=bench.services.vectors,
                              embedder=bench.services.embedder, chat_model=model,
                              ledger=bench.services.ledger, budgets=bench.services.budgets,
                              checker=bench.answering.checker, coverage_min=-1,
                              support_min=threshold)
        for lecture, _, q in library.questions:
            if q.off_topic or q.follow_up_of is not None or not q.answer_sentence:
                continue
            player = Player(q, lecture.questions)
            for kind in ("right", "wrong-passage", "wrong-claim", "not-given"):
                server.responder = player.playing(kind)
                answer = answering.answer(library.creator_id, q.question, history=[])
                # The same check, to see its two numbers (Answering keeps only the verdict).
                checked, _ = citations.check_citations(
                    answer.answer, passages_for(bench, library, q.question),
                    bench.answering.checker)
                shipped = {(r.claim, r.timestamp): r.verified for r in answer.references}
                for c in checked:
                    at = timestamp(c.sentence.start_s) if c.sentence else c.timestamp
                    verdict = shipped.get((c.claim, at), c.verified)
                    cases.append(CitationCase(kind, verdict, c.support, c.margin,
                                              c.sentence is not None))
    return cases


def calibrate_support(cases: Sequence[CitationCase]) -> tuple[float, float]:
    """The (support, margin) thresholds that verify no wrong citation and the most right
    ones; among equals, the lowest support and the smallest margin."""
    best: tuple[int, float, float] = (-1, 0.0, 0.0)
    for support in [round(0.30 + 0.01 * i, 2) for i in range(61)]:
        for margin in [round(0.01 * i, 2) for i in range(0, 21)]:
            if any(c.passes(support, margin) for c in cases if c.kind != "right"):
                continue
            right = sum(c.passes(support, margin) for c in cases if c.kind == "right")
            if right > best[0]:
                best = (right, support, margin)
    return best[1], best[2]


def precision_line(cases: Sequence[CitationCase], threshold: float, margin: float) -> str:
    verified = [c for c in cases if c.passes(threshold, margin)]
    right = [c for c in cases if c.kind == "right"]
    good = sum(c.kind == "right" for c in verified)
    flagged = sum(not c.passes(threshold, margin) for c in cases if c.kind != "right")
    wrong = len(cases) - len(right)
    return (f"precision {share(good, len(verified))}, right ones verified "
            f"{share(good, len(right))}, wrong ones flagged {share(flagged, wrong)}")


def report_citations(bench: Bench, calibration: Library, held_out: Library) -> None:
    print("\n== 3. citations served by the loopback chat server (right, wrong passage, "
          "wrong claim, time not given)")
    cal = citation_cases(bench, calibration, citations.SUPPORT_MIN)
    rep = citation_cases(bench, held_out, citations.SUPPORT_MIN)
    chosen = calibrate_support(cal)
    shipped = (citations.SUPPORT_MIN, citations.MARGIN_MIN)
    for name, cases in (("calibration", cal), ("report", rep)):
        kinds = {k: sum(c.kind == k for c in cases)
                 for k in ("right", "wrong-passage", "wrong-claim", "not-given")}
        print(f"  {name:11} citations {kinds}")
        for (support, margin), label in ((chosen, "strict"), (shipped, "shipped")):
            print(f"  {name:11} {label:10} support ≥ {support:.2f}, margin ≥ -{margin:.2f}: "
                  f"{precision_line(cases, support, margin)}")
        alone = (min((c.support for c in cases if c.kind == "right"), default=0.0), 1.0)
        print(f"  {name:11} {'no margin':10} support ≥ {alone[0]:.2f} (every right one): "
              f"{precision_line(cases, *alone)}")
    wrong_shown = [c for c in rep if c.verified and c.kind != "right"]
    print(f"  report, through Answering as shipped: wrong citations shown as verified: "
          f"{len(wrong_shown)}")


# 4. chronos eval --------------------------------------------------------------------------
def report_eval(bench: Bench, held_out: Library) -> None:
    print("\n== 4. chronos eval through Answering as shipped, report lectures")
    for lecture in held_out.lectures:
        file = evaluation.QuestionFile(lecture.questions)
        result = evaluation.evaluate(bench.answering, bench.services.catalog,
                                     bench.services.ledger, held_out.creator_id, file,
                                     name=lecture.name)
        m = result.metrics()
        print(f"  {lecture.name:15} hit@3 {m['hit_at_3']:.2f}  follow-up hit@3 "
              f"{m['follow_up_hit_at_3']:.2f}  off-topic abstained {m['abstention']:.2f}  "
              f"false abstentions {m['false_abstention']:.2f}  "
              f"{m['questions_per_s']:.2f} questions/s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sample-transcript", type=Path,
                        help="the sample lecture's transcript.json (default: transcribe it)")
    parser.add_argument("--sections", default="1234",
                        help="which parts to run, e.g. 23 (default: all four)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    calibration = Library("calibration", [
        load_lecture("Momentum indicators", sample_transcript(args.sample_transcript),
                     SAMPLE / "questions.json"),
        load_lecture("Hash tables", HELDOUT / "hashing" / "transcript.json",
                     HELDOUT / "hashing" / "questions.json"),
    ])
    held_out = Library("report", [
        load_lecture("Photosynthesis", HELDOUT / "photosynthesis" / "transcript.json",
                     HELDOUT / "photosynthesis" / "questions.json"),
        load_lecture("The French Revolution", HELDOUT / "revolution" / "transcript.json",
                     HELDOUT / "revolution" / "questions.json"),
    ])
    with tempfile.TemporaryDirectory(prefix="chronos-trust-") as tmp:
        settings = Settings.from_env({"CHRONOS_DATA_DIR": tmp})
        services = Services(settings)
        bench = Bench(services, services.answering)
        for library in (calibration, held_out):
            store(bench, library)
        began = time.perf_counter()
        if "1" in args.sections:
            report_coverage(bench, calibration, held_out)
        if "2" in args.sections:
            report_follow_ups(bench, calibration, held_out)
        if "3" in args.sections:
            report_citations(bench, calibration, held_out)
        if "4" in args.sections:
            report_eval(bench, held_out)
        print(f"\n({time.perf_counter() - began:.0f} s)")
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
