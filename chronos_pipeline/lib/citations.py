"""Checking a generative model's citations claim by claim, locally and at no cost.

The answer is cut into claims (its sentences and lines); each ``[mm:ss]`` a claim carries
must be the time of one of the passages the model was given, and a sentence of that passage
must support the claim. Support is the cosine similarity, with the local MiniLM embedder,
between the claim (its citations removed) and the passage's sentences, each read alone
and together with the sentence before it (speech often states the topic first and the
answer next). The best-supporting sentence is what the reference points at, with its own
start time. A claim below ``SUPPORT_MIN``, or citing a time it was not given, makes its
reference ``verified: false``; the reference is still shown, flagged, never silently.

``SUPPORT_MIN`` was calibrated by ``python -m benchmarks.trust`` on right and deliberately
wrong citations (served by the loopback chat server) on the calibration lectures; the
same command reports citation precision on other lectures.
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
                    threshold: float = SUPPORT_MIN
                    ) -> tuple[list[CheckedCitation], Usage | None]:
    """Every citation of every claim in ``answer``, checked against ``passages``."""
    given: dict[str, Passage] = {}
    for passage in passages:
        given.setdefault(timestamp(passage.start_s), passage)
    claims = claims_of(answer)
    pairs = [(claim, time) for claim in claims for time in claim.times]
    if not pairs:
        return [], None
    cited = {time: _windows(given[time]) for _, time in pairs if time in given}
    texts = [c.text for c in claims] + [text for w in cited.values() for _, text in w]
    vectors, usage = embedder.embed(texts) if cited else (np.zeros((0, 1)), None)
    claim_vector = {c.text: vectors[i] for i, c in enumerate(claims)} if cited else {}
    window_vectors: dict[str, np.ndarray] = {}
    offset = len(claims)
    for time, windows in cited.items():
        window_vectors[time] = vectors[offset: offset + len(windows)]
        offset += len(windows)
    checked: list[CheckedCitation] = []
    for claim, time in pairs:
        if time not in cited:
            checked.append(CheckedCitation(claim.text, time, None, 0.0, False))
            continue
        similarities = window_vectors[time] @ claim_vector[claim.text]
        best = int(np.argmax(similarities))
        support = round(float(similarities[best]), 4)
        sentence = cited[time][best][0]
        checked.append(CheckedCitation(claim.text, time, sentence, support,
                                       support >= threshold))
    return checked, usage
