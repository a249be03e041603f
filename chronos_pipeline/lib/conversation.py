"""Conversations: the recent turns a follow-up question is read with, and the local rewrite
of a follow-up into a question that stands alone for retrieval.

A follow-up ("And what's the bullish version of that?") retrieves nothing useful on its
own: its topic is in an earlier turn. With a generative chat model the model rewrites it
(a costed call, stage ``rewrite``); locally, without a paid model, a question that refers
back (a referring word such as "it", "that", "one"; an opening such as "And …"; or at
most one topic word of its own) gets the salient words of the previous question appended:
its content words (no stop words) that the follow-up does not already use. A question
that does not refer back is left alone: appending the old topic to a new one cost a fifth
of the topic changes their moment. ``python -m benchmarks.trust`` measured the
alternatives in ``METHODS`` on the calibration lectures' follow-ups and on questions asked
after an unrelated one, and chose the default (most follow-ups found, then least harm);
it reports them on other lectures.

History is bounded by tokens, not turns: the newest turns that fit ``HISTORY_TOKENS``
(counted by the embedder's tokenizer, a close stand-in for a chat model's), whole turns
only, and each turn cut to ``TURN_TOKENS`` first, so that one long answer cannot crowd
out the question before it. A turn is cut to ``CHARS_PER_TOKEN`` characters a token before
its tokens are counted: a client that sends the conversation itself (the OpenAI-compatible
endpoint) may send megabytes, and tokenizing them held the shared tokenizer for seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from chronos_pipeline.lib.providers.base import Turn

HISTORY_TOKENS = 600
TURN_TOKENS = 250
# English runs four to five characters a token; a turn cut at this many still fills its
# token budget, and only the cut's remainder is ever tokenized.
CHARS_PER_TOKEN = 16
# Salient words taken from the previous question at most.
SALIENT_WORDS = 8

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_STOP_WORDS = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing done down during each else
even every few for from further get gets got had has have having he her here hers him his
how i if in into is it its it's itself just kind let like lot make many may me might more
most much must my no nor not now of off on once one only or other our out over own really
same say says she should so some such tell than that that's the their them then there
these they thing things this those through to too under until up us use used very was we
were what what's when where which while who whom whose why will with would yes yet you
your isn't aren't wasn't don't doesn't didn't can't won't shouldn't couldn't i'm i've
you're let's there's here's how's why's where's who's whats hows
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry its topic, lower-cased, in order, each once."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip("'-")
        if len(word) > 2 and word not in STOP_WORDS:
            seen.setdefault(word, None)
    return list(seen)


def recent_turns(turns: Sequence[Turn], count_tokens: Callable[[str], int],
                 budget: int = HISTORY_TOKENS, per_turn: int = TURN_TOKENS) -> list[Turn]:
    """The newest whole turns within ``budget`` tokens, oldest first."""
    kept: list[Turn] = []
    spent = 0
    for turn in reversed(turns):
        text = turn.text.strip()
        if len(text) > per_turn * CHARS_PER_TOKEN:
            text = text[: per_turn * CHARS_PER_TOKEN].rstrip() + " …"
        tokens = count_tokens(text)
        if tokens > per_turn:
            # Keep the turn's beginning: a question, or an answer's first claim.
            words = text.split()
            text = " ".join(words[: max(1, len(words) * per_turn // tokens)]) + " …"
            tokens = count_tokens(text)
        if spent + tokens > budget:
            break
        kept.append(Turn(turn.role, text))
        spent += tokens
    return kept[::-1]


def _previous(history: Sequence[Turn], role: str) -> str:
    return next((t.text for t in reversed(history) if t.role == role), "")


def _salient(text: str, question: str, limit: int = SALIENT_WORDS) -> list[str]:
    have = set(content_words(question))
    return [w for w in content_words(text) if w not in have][:limit]


def _none(question: str, history: Sequence[Turn]) -> str:
    return question


def _previous_question(question: str, history: Sequence[Turn]) -> str:
    return f"{_previous(history, 'user')} {question}".strip()


def _question_terms(question: str, history: Sequence[Turn]) -> str:
    terms = _salient(_previous(history, "user"), question)
    return f"{question} {' '.join(terms)}".strip()


def _question_and_answer_terms(question: str, history: Sequence[Turn]) -> str:
    asked = _salient(_previous(history, "user"), question)
    answered = [w for w in _salient(_previous(history, "assistant"), question)
                if w not in asked][:SALIENT_WORDS // 2]
    return " ".join([question, *asked, *answered]).strip()


# Words by which a question leans on an earlier turn ("that", "the other one", "it").
_REFERRING_WORDS = """
it its it's that this these those they them their theirs there then he she him his her
one ones other others another same such instead also too else
"""
REFERRING_WORDS = frozenset(_REFERRING_WORDS.split())
OPENERS = ("and ", "but ", "so ", "or ", "what about", "how about", "then ")


def leans_on_history(question: str) -> bool:
    """Whether ``question`` refers to an earlier turn: a referring word, an opening like
    "And …" or "What about …", or at most one word of its own topic."""
    lowered = question.lower().strip()
    words = {w.strip("'-") for w in _WORD.findall(lowered)}
    return (bool(words & REFERRING_WORDS) or lowered.startswith(OPENERS)
            or len(content_words(question)) <= 1)


def _question_terms_when_referring(question: str, history: Sequence[Turn]) -> str:
    return _question_terms(question, history) if leans_on_history(question) else question


METHODS: dict[str, Callable[[str, Sequence[Turn]], str]] = {
    "none": _none,
    "previous-question": _previous_question,
    "question-terms": _question_terms,
    "question-and-answer-terms": _question_and_answer_terms,
    "question-terms-when-referring": _question_terms_when_referring,
}
DEFAULT_METHOD = "question-terms-when-referring"


def standalone_question(question: str, history: Sequence[Turn],
                        method: str = DEFAULT_METHOD) -> str:
    """``question`` made to stand alone for retrieval, locally; itself without history."""
    if not any(t.role == "user" for t in history):
        return question
    return METHODS[method](question, history)
