"""The question file format and the eval's metric definitions."""

from __future__ import annotations

import pytest

from chronos_pipeline.lib.answering import Reference
from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.evaluation import (
    Outcome,
    Question,
    Report,
    load_questions,
    parse_questions,
)
from tests.conftest import REPO, SAMPLE_DIR


def ref(start_s: float, video_id: str = "vd_a") -> Reference:
    return Reference(video_id, "Lecture", start_s, start_s + 4.0, "00:00", "text", 0.5)


def test_the_sample_question_file_has_covered_off_topic_and_follow_up_questions() -> None:
    questions = load_questions(SAMPLE_DIR / "questions.json")
    assert len(questions.covered) == 10 and len(questions.questions) == 22
    assert all(q.answer_at_s is not None for q in questions.covered)
    assert sum(q.off_topic for q in questions.questions) == 8
    assert len(questions.follow_ups) == 4
    for number, q in enumerate(questions.questions):
        if q.follow_up_of is not None:
            base = questions.questions[q.follow_up_of]
            assert q.follow_up_of < number and not base.off_topic and q.answer_claim


def test_every_question_file_names_its_follow_ups_by_an_earlier_index() -> None:
    # The lectures the trust benchmark calibrates and reports on carry follow-ups and
    # claims (the spoken held-out lectures of the retrieval benchmark do not).
    heldout = REPO / "benchmarks" / "heldout"
    for path in [SAMPLE_DIR / "questions.json",
                 *(heldout / name / "questions.json"
                   for name in ("hashing", "photosynthesis", "revolution"))]:
        questions = load_questions(path)
        assert questions.follow_ups, path
        assert all(q.answer_claim for q in questions.covered + questions.follow_ups), path


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not json at all", "is not a question file"),
        (b'[{"question": "Who?", "answer_at_s": 3}]', "Expected `object`, got `array`"),
        (b'{"questions": []}', "holds no questions"),
        (b'{"questions": [{"question": "  ", "answer_at_s": 3}]}', "question 1: the question"),
        (b'{"questions": [{"question": "Who?"}]}', "question 1: a covered question needs"),
        (b'{"questions": [{"question": "Who?", "answer_at_s": "soon"}]}',
         "$.questions[0].answer_at_s"),
        (b'{"questions": [{"question": "Who?", "answer_at": 3}]}', "unknown field `answer_at`"),
        (b'{"questions": [{"question": "Who?", "off_topic": true, "answer_at_s": 3}]}',
         "an off-topic question has no answer_at_s"),
        (b'{"questions": [{"question": "And then?", "answer_at_s": 3, "follow_up_of": 0}]}',
         "question 1: follow_up_of must be the 0-based index of an earlier question"),
        # These three raised a traceback, or failed only when their turn came, after the
        # questions before them were answered and paid for.
        (b'{"questions": [{"question": "Caf\xe9?", "off_topic": true}]}', "can't decode"),
        (b'{"questions": [{"question": "Who?", "answer_at_s": 3}, {"question": "'
         + b"x" * 2001 + b'", "off_topic": true}]}', "question 2: a question is at most 2000"),
        (b'{"questions": [{"question": "Who\\u0000?", "answer_at_s": 3}]}',
         "question 1: a question is at most 2000 characters, without NUL"),
    ],
    ids=["not-json", "bare-list", "empty", "blank-question", "no-moment",
         "moment-not-a-number", "typo-field", "off-topic-with-moment", "follow-up-of-itself",
         "latin-1-not-utf8", "question-too-long", "nul-in-question"],
)
def test_a_malformed_question_file_says_what_is_wrong_and_where(
    content: bytes, says: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_questions(content, "q.json")
    assert refused.value.message.startswith("q.json") and says in refused.value.message


def test_a_question_file_saved_with_a_utf8_byte_order_mark_is_read() -> None:
    parsed = parse_questions(b'\xef\xbb\xbf{"questions": [{"question": "Who?", "answer_at_s": 3}]}')
    assert [q.question for q in parsed.questions] == ["Who?"]


def test_metrics_follow_their_documented_definitions() -> None:
    at_first = Question("a?", answer_at_s=10.0)
    at_second = Question("b?", answer_at_s=100.0)
    in_other_video = Question("c?", answer_at_s=50.0, video_id="vd_b")
    abstained = Question("d?", answer_at_s=70.0)
    off_quiet = Question("e?", off_topic=True)
    off_loud = Question("f?", off_topic=True)
    follow_hit = Question("g?", answer_at_s=150.0, follow_up_of=0)
    follow_miss = Question("h?", answer_at_s=300.0, follow_up_of=1)
    report = Report([
        Outcome(at_first, [ref(8.0), ref(150.0)], "cm_1"),
        # 100 s lies in [start - 10, end + 10] of a reference starting at 105 s.
        Outcome(at_second, [ref(30.0), ref(105.0), ref(200.0)], "cm_2"),
        Outcome(in_other_video, [ref(50.0, "vd_a")], "cm_3"),
        Outcome(abstained, [], "cm_4"),
        Outcome(off_quiet, [], "cm_5"),
        Outcome(off_loud, [ref(12.0)], "cm_6"),
        Outcome(follow_hit, [ref(30.0), ref(150.0)], "cm_7"),
        Outcome(follow_miss, [ref(30.0)], "cm_8"),
    ], session_id="cs_x", seconds=2.0)
    metrics = report.metrics()
    assert (metrics["covered"], metrics["off_topic"], metrics["follow_ups"]) == (4, 2, 2)
    # Follow-ups count on their own, not in hit@k, MRR or citation precision.
    assert metrics["follow_up_hit_at_3"] == 1 / 2
    assert metrics["hit_at_1"] == 1 / 4 and metrics["hit_at_3"] == 2 / 4
    assert metrics["mrr"] == (1 + 1 / 2) / 4
    assert metrics["abstention"] == 1 / 2 and metrics["false_abstention"] == 1 / 4
    # Shown on covered questions: 2 + 3 + 1 references, of which 2 cite their moment.
    assert metrics["citation_precision"] == 2 / 6
    assert metrics["questions_per_s"] == 4.0
