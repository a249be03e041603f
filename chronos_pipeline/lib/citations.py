"""Checking a generative model's citations claim by claim, locally and at no cost.

The answer is cut into claims (its sentences and lines); each ``[mm:ss]`` a claim carries
must be the time of one of the passages the model was given, and a sentence of that passage
must support the claim. Support is the cosine similarity, with the local MiniLM embedder,
between the claim (its citations removed) and the passage's sentences, each read alone
and together with the sentence before it (speech often states the topic first and the
answer next). The best-supporting sentence is what the reference points at, with its own
start time. A citation is verified when its support reaches ``SUPPORT_MIN`` and no other
excerpt the model was given supports the claim better by more than ``MARGIN_MIN`` (on one
topic, a wrong excerpt is often similar enough in absolute terms: the right one beside it
is what gives it away). A claim that fails, or cites a time it was not given, makes its
reference ``verified: false``; the reference is still shown, flagged, never silently.

``SUPPORT_MIN`` (0.5) and ``MARGIN_MIN`` (0: no other excerpt may do better) were set
before measuring and checked by ``python -m benchmarks.trust`` on right and deliberately
wrong citations served by the loopback chat server. On the calibration lectures they
verify 13 of 14 right citations and 1 of 42 wrong ones (a claim that the lecture covers
moving averages and RSI, cited to "Let us begin with the moving average."); the strict
alternative, no wrong one verified there, needs a support of 0.88 and verifies only 4 of
the 14 right ones, flagging most good citations, so it was not taken. The same command
reports both on other lectures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import Embedder, Passage
from chronos_pipeline.lib.timefmt import timestamp

SUPPORT_MIN = 0.5
MARGIN_MIN = 0.0
NOT_GIVEN = "cites a time that was not among the excerpts the model was given"
NOT_SUPPORTED = "the cited passage does not support this claim"

_TIME = re.compile(r"\[(\d+(?::\d{2}){1,2})\]")
_SPACE_BEFORE_MARK = re.compile(r"\s+([.,;:!?])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")


@dataclass(frozen=True)
class Claim:
    text: str
    times: list[str]


@dataclass(frozen=True)
class CheckedCitation:
    """One claim's citation of one time: the sentence it points at (``None`` when the time
    was not given), how well that sentence supports it, and the verdict."""

    claim: str
    timestamp: str
    sentence: Passage | None
    support: float
    verified: bool
    # Support minus the best support any other excerpt given offers the claim: negative
    # when another excerpt says it better (the model cited the wrong one).
    margin: float = 0.0

    @property
    def reason(self) -> str | None:
        if self.verified:
            return None
        return NOT_GIVEN if self.sentence is None else NOT_SUPPORTED


def claims_of(answer: str) -> list[Claim]:
    """The answer's sentences that cite something, with their citations taken out.

    A citation standing alone after a sentence ("… in 1978. [01:52]") belongs to it."""
    pieces: list[Claim] = []
    for piece in _SENTENCE_END.split(answer):
        times = list(dict.fromkeys(_TIME.findall(piece)))
        text = _SPACE_BEFORE_MARK.sub(r"\1", " ".join(_TIME.sub(" ", piece).split()))
        text = text.strip(" -*•")
        if len(text) < 3 and pieces:  # only a citation: it cites the sentence before it
            pieces[-1] = Claim(pieces[-1].text, [*pieces[-1].times, *times])
        elif text:
            pieces.append(Claim(text, times))
    return [claim for claim in pieces if claim.times]


def _windows(passage: Passage) -> list[tuple[Passage, str]]:
    sentences = passage.sentences or [(passage.start_s, passage.end_s, passage.text)]
    out: list[tuple[Passage, str]] = []
    for i, (start, end, text) in enumerate(sentences):
        sentence = Passage(passage.video_id, passage.title, start, end, text, passage.score)
        out.append((sentence, text))
        if i > 0:
            out.append((sentence, f"{sentences[i - 1][2]} {text}"))
    return out


def check_citations(answer: str, passages: Sequence[Passage], embedder: Embedder,
                    threshold: float = SUPPORT_MIN, margin: float = MARGIN_MIN
                    ) -> tuple[list[CheckedCitation], Usage | None]:
    """Every citation of every claim in ``answer``, checked against ``passages``."""
    given: dict[str, Passage] = {}
    for passage in passages:
        given.setdefault(timestamp(passage.start_s), passage)
    claims = claims_of(answer)
    pairs = [(claim, time) for claim in claims for time in claim.times]
    if not pairs:
        return [], None
    if not any(time in given for _, time in pairs):
        return [CheckedCitation(c.text, t, None, 0.0, False) for c, t in pairs], None
    windows = {time: _windows(passage) for time, passage in given.items()}
    texts = [c.text for c in claims] + [text for w in windows.values() for _, text in w]
    vectors, usage = embedder.embed(texts)
    # Best support of each claim by each excerpt, and which sentence gives it.
    best: dict[tuple[int, str], tuple[float, Passage]] = {}
    offset = len(claims)
    for time, excerpt in windows.items():
        similarities = vectors[offset: offset + len(excerpt)] @ vectors[: len(claims)].T
        offset += len(excerpt)
        for index in range(len(claims)):
            top = int(np.argmax(similarities[:, index]))
            best[(index, time)] = (float(similarities[top, index]), excerpt[top][0])
    checked: list[CheckedCitation] = []
    for claim, time in pairs:
        if time not in given:
            checked.append(CheckedCitation(claim.text, time, None, 0.0, False))
            continue
        index = claims.index(claim)
        support, sentence = best[(index, time)]
        rival = max((best[(index, other)][0] for other in given if other != time),
                    default=-1.0)
        lead = round(support - rival, 4)
        checked.append(CheckedCitation(claim.text, time, sentence, round(support, 4),
                                       support >= threshold and lead >= -margin, lead))
    return checked, usage
