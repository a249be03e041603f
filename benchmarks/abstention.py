"""Abstention features beyond the best question-to-sentence similarity, tuned on one set of
lectures and reported on others.

The shipped "not covered" rule (``lib.coverage``) abstains when the best cosine similarity
between the standalone question and a retrieved sentence is below ``COVERAGE_MIN``. This
measures alternatives that add a second feature:

- ``max``: the best similarity alone (recalibrated on the tuning libraries);
- ``max+overlap``: plus ``w`` × the share of the question's content words found in the
  retrieved sentences (exact or fuzzy: the same first five letters);
- ``max-mean``: minus ``w`` × the mean similarity over the retrieved sentences (a question
  that is close to everything is close to nothing in particular);
- ``margin``: the best similarity minus the mean, alone.

Each rule's threshold (and weight) is chosen on the TUNING libraries only (the sample
lecture + hashing, as ``benchmarks.trust`` calibrates; dictionaries + temperament, spoken),
as the one that abstains on the most off-topic questions with at most 5 % of covered ones
refused; it is then applied unchanged to the REPORT libraries: photosynthesis + revolution
(``benchmarks.trust``'s report) and statistics + printing + crispr + git_internals (spoken;
``benchmarks/heldout/README.md``'s report set).

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.abstention
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import trust
from benchmarks.retrieval_audio import transcribe_cached
from chronos_pipeline.lib import coverage, evaluation
from chronos_pipeline.lib.conversation import content_words, standalone_question
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.transcripts import Transcript

HELDOUT = trust.HELDOUT
MAX_FALSE = trust.MAX_FALSE_ABSTENTION
PREFIX = 5


@dataclass
class Features:
    off_topic: bool
    question: str
    best: float
    mean: float
    overlap: float


def lecture(name: str) -> trust.Lecture:
    folder = trust.SAMPLE if name == "sample" else HELDOUT / name
    media = next((folder / f for f in ("lecture.m4a", "lecture.mp4")
                  if (folder / f).exists()), None)
    transcript = (transcribe_cached(media) if media is not None else Transcript.from_json(
        json.loads((folder / "transcript.json").read_text("utf-8"))))
    return trust.Lecture(name, transcript,
                         list(evaluation.load_questions(folder / "questions.json").questions))


def _key(word: str) -> str:
    return word[:PREFIX]


def overlap(question: str, text: str) -> float:
    asked = content_words(question)
    if not asked:
        return 0.0
    have = {_key(w) for w in content_words(text)}
    return sum(_key(w) in have for w in asked) / len(asked)


def features(bench: trust.Bench, library: trust.Library) -> list[Features]:
    embedder = bench.answering.checker
    out = []
    for lec, _, q in library.questions:
        history = ([] if q.follow_up_of is None
                   else trust.history_of(bench, library, lec.questions[q.follow_up_of]))
        search = standalone_question(q.question, history)
        passages = trust.passages_for(bench, library, search)
        sentences = coverage.sentences_of(passages)
        vectors, _ = embedder.embed([search, *sentences])
        sims = vectors[1:] @ vectors[0]
        out.append(Features(q.off_topic, q.question, float(np.max(sims)),
                            float(np.mean(sims)), overlap(search, " ".join(sentences))))
    return out


Rule = Callable[[Features, float], float]
RULES: dict[str, tuple[Rule, Sequence[float]]] = {
    "max": (lambda f, w: f.best, [0.0]),
    "max+overlap": (lambda f, w: f.best + w * f.overlap, [0.05, 0.1, 0.15, 0.2, 0.3]),
    "max-mean": (lambda f, w: f.best - w * f.mean, [0.25, 0.5, 0.75, 1.0]),
    "margin": (lambda f, w: f.best - f.mean, [0.0]),
}


def counts(rows: Sequence[Features], rule: Rule, w: float, t: float) -> tuple[int, int, int, int]:
    off = [r for r in rows if r.off_topic]
    cov = [r for r in rows if not r.off_topic]
    return (sum(rule(r, w) < t for r in off), len(off),
            sum(rule(r, w) < t for r in cov), len(cov))


def calibrate(rows: Sequence[Features], rule: Rule, weights: Sequence[float]
              ) -> tuple[float, float, int, int]:
    """(weight, threshold, abstained, refused): most off-topic abstained with at most 5 %
    of covered refused; then fewest refused; then the lowest threshold."""
    best: tuple[int, int, float, float] = (-1, 0, 0.0, 0.0)
    for w in weights:
        values = sorted({round(rule(r, w), 4) for r in rows})
        for t in [(a + b) / 2 for a, b in itertools.pairwise(values)]:
            abstained, _, refused, covered = counts(rows, rule, w, t)
            if refused > MAX_FALSE * covered:
                continue
            if (abstained, -refused) > (best[0], best[1]):
                best = (abstained, -refused, w, round(t, 3))
    return best[2], best[3], best[0], -best[1]


def main() -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    libraries = {
        "tuning: sample+hashing": ["sample", "hashing"],
        "tuning: dictionaries+temperament": ["dictionaries", "temperament"],
        "report: photosynthesis+revolution": ["photosynthesis", "revolution"],
        "report: statistics+printing+crispr+git": ["statistics", "printing", "crispr",
                                                    "git_internals"],
    }
    rows: dict[str, list[Features]] = {}
    with tempfile.TemporaryDirectory(prefix="chronos-abstention-") as tmp:
        services = Services(Settings.from_env({"CHRONOS_DATA_DIR": tmp}))
        bench = trust.Bench(services, services.answering)
        for name, lectures in libraries.items():
            library = trust.Library(name, [lecture(n) for n in lectures])
            trust.store(bench, library)
            rows[name] = features(bench, library)
        services.close()
    tuning = [r for name, rs in rows.items() if name.startswith("tuning") for r in rs]
    print(f"shipped COVERAGE_MIN {coverage.COVERAGE_MIN}; rules chosen on the tuning "
          f"libraries ({len(tuning)} questions), at most {MAX_FALSE:.0%} refused there\n")
    shipped = RULES["max"][0]
    for name, rs in rows.items():
        a, off, r, cov = counts(rs, shipped, 0.0, coverage.COVERAGE_MIN)
        print(f"  {'max (shipped)':14} {name:40} off-topic abstained "
              f"{trust.share(a, off):12} false abstentions {trust.share(r, cov)}")
    for label, (rule, weights) in RULES.items():
        w, t, _, _ = calibrate(tuning, rule, weights)
        print(f"\n{label}: weight {w:g}, threshold {t:.3f}")
        for name, rs in rows.items():
            a, off, r, cov = counts(rs, rule, w, t)
            print(f"  {'':14} {name:40} off-topic abstained "
                  f"{trust.share(a, off):12} false abstentions {trust.share(r, cov)}")
    print("\nper question (report libraries): best, mean, overlap")
    for name, rs in rows.items():
        if name.startswith("report"):
            for f in sorted(rs, key=lambda f: f.best):
                print(f"  {'OFF' if f.off_topic else '   '} {f.best:.3f} {f.mean:.3f} "
                      f"{f.overlap:.2f}  {f.question}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
