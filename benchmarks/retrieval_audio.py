"""Retrieval on real audio: vector search against hybrid (vector + full text), per lecture set.

Every lecture of a set is transcribed by the local faster-whisper transcriber (cached under
``data/bench/transcripts/``, keyed by the file's hash), chunked as the pipeline chunks,
embedded with the local embedder into a temporary LanceDB under one creator (the set's other
lectures are the distractors), and every question of its question file is asked the way
``Answering`` asks it: embed, ``retrieval.search`` in the given mode, then the extractive
answerer. A hit is a reference in the questioned lecture within ±10 s of ``answer_at_s``.

Sets (see ``benchmarks/heldout/README.md``): ``tuning`` (the only one looked at while
choosing the fusion's parameters), ``report`` (never tuned on) and ``sample`` (the shipped
sample lecture). Before anything is scored, each answer moment is checked against what
Whisper actually heard there.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.retrieval_audio [--sets tuning,report,sample]
        [--modes vector,hybrid] [--text-weight 1.0] [--rrf-k 60] [--candidates 20]
        [--text-candidates 3] [--text-bonus 0.1] [--fuzziness 0] [-v]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chronos_pipeline.lib import evaluation, ids, retrieval
from chronos_pipeline.lib.chunking import chunk_transcript, sentences
from chronos_pipeline.lib.providers.base import Cited, Passage
from chronos_pipeline.lib.providers.extractive_chat import ExtractiveChatModel
from chronos_pipeline.lib.providers.local_embedder import LocalEmbedder
from chronos_pipeline.lib.transcripts import Transcript
from chronos_pipeline.lib.vectors import VectorStore

REPO_ROOT = Path(__file__).resolve().parents[1]
HELDOUT = REPO_ROOT / "benchmarks" / "heldout"
CACHE = REPO_ROOT / "data" / "bench" / "transcripts"
BEAM_SIZE = 5
TOP = 3

SETS: dict[str, tuple[str, ...]] = {
    # Spoken lectures (lecture.m4a) and the three text-only ones (transcript.json).
    "tuning": ("dictionaries", "temperament", "hashing", "photosynthesis", "revolution"),
    "report": ("statistics", "printing", "crispr", "git_internals"),
    "sample": ("sample",),
}

_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class Lecture:
    name: str
    transcript: Transcript
    questions: evaluation.QuestionFile
    spoken: bool
    video_id: str = field(default_factory=lambda: ids.new_id("video"))


def _folder(name: str) -> Path:
    return REPO_ROOT / "samples" / "lecture" if name == "sample" else HELDOUT / name


def _media(folder: Path) -> Path | None:
    for candidate in ("lecture.m4a", "lecture.mp4"):
        if (folder / candidate).exists():
            return folder / candidate
    return None


def transcribe_cached(media: Path) -> Transcript:
    digest = hashlib.sha256(media.read_bytes()).hexdigest()[:16]
    cached = CACHE / f"{media.parent.name}.{digest}.beam{BEAM_SIZE}.json"
    if cached.exists():
        return Transcript.from_json(json.loads(cached.read_text(encoding="utf-8")))
    from chronos_pipeline.lib.providers.local_whisper import LocalWhisperTranscriber

    print(f"transcribing {media.relative_to(REPO_ROOT)} ...", flush=True)
    transcript, _ = LocalWhisperTranscriber(beam_size=BEAM_SIZE).transcribe(media)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(transcript.to_json("vd_0000000000000000")), encoding="utf-8")
    return transcript


def load(name: str) -> Lecture:
    folder = _folder(name)
    media = _media(folder)
    if media is not None:
        transcript, spoken = transcribe_cached(media), True
    else:
        raw = json.loads((folder / "transcript.json").read_text(encoding="utf-8"))
        transcript, spoken = Transcript.from_json(raw), False
    return Lecture(name, transcript, evaluation.load_questions(folder / "questions.json"), spoken)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def unheard_moments(lecture: Lecture) -> list[str]:
    """Questions whose ``answer_at_s`` is not where Whisper heard the answer sentence begin:
    at least half of the sentence's first six words must be among the words transcribed
    from 1.5 s before the moment to 4 s after it."""
    problems = []
    heard = [(s.start_s, s.end_s, s.text) for s in sentences(lecture.transcript)]
    for q in lecture.questions.covered:
        if q.answer_sentence is None or q.answer_at_s is None:
            continue
        moment = q.answer_at_s
        around = {w for start, end, text in heard
                  if end >= moment - 1.5 and start <= moment + 4.0 for w in _words(text)}
        opening = _words(q.answer_sentence)[:6]
        if sum(w in around for w in opening) < len(opening) / 2:
            problems.append(f"{lecture.name} @ {moment:.1f} s: {q.answer_sentence[:60]}…")
    return problems


@dataclass
class Score:
    ranks: list[int | None] = field(default_factory=list)
    chunk_ranks: list[int | None] = field(default_factory=list)
    off_topic: int = 0
    abstained: int = 0
    misses: list[str] = field(default_factory=list)

    def at(self, n: int, chunks: bool = False) -> int:
        return sum(1 for r in (self.chunk_ranks if chunks else self.ranks) if r and r <= n)

    @property
    def mrr(self) -> float:
        return sum(1 / r for r in self.ranks if r) / len(self.ranks) if self.ranks else 0.0


def _rank(spans: Sequence[tuple[str, float, float]], video_id: str, moment: float) -> int | None:
    tolerance = evaluation.TOLERANCE_S
    return next((i for i, (vid, start, end) in enumerate(spans, 1)
                 if vid == video_id and start - tolerance <= moment <= end + tolerance), None)


def run_set(lectures: Sequence[Lecture], embedder: LocalEmbedder, modes: Sequence[str],
            k: int, directory: Path) -> dict[str, Score]:
    store = VectorStore(directory, embedder.model_id, embedder.dimension)
    creator_id = ids.new_id("creator")
    for lecture in lectures:
        chunks = chunk_transcript(lecture.transcript)
        vectors, _ = embedder.embed([c.text for c in chunks])
        store.replace_video(creator_id=creator_id, video_id=lecture.video_id, course_id=None,
                            chunks=chunks, vectors=vectors)
    store.ensure_text_index()
    answerer = ExtractiveChatModel(embedder)
    scores = {mode: Score() for mode in modes}
    for lecture in lectures:
        for q in lecture.questions.questions:
            query, _ = embedder.embed([q.question])
            for mode in modes:
                hits = retrieval.search(store, q.question, query[0], creator_id=creator_id,
                                        k=k, mode=mode)
                passages = [Passage(h.video_id, lecture.name, h.start_s, h.end_s, h.text,
                                    h.score, h.sentences) for h in hits]
                cited: list[Passage] = []
                for event in answerer.answer(q.question, passages):
                    if isinstance(event, Cited):
                        cited = event.passages
                score = scores[mode]
                if q.off_topic:
                    score.off_topic += 1
                    score.abstained += not cited
                    continue
                moment = float(q.answer_at_s or 0.0)
                rank = _rank([(p.video_id, p.start_s, p.end_s) for p in cited],
                             lecture.video_id, moment)
                score.ranks.append(rank)
                score.chunk_ranks.append(_rank([(h.video_id, h.start_s, h.end_s) for h in hits],
                                               lecture.video_id, moment))
                if rank is None or rank > TOP:
                    score.misses.append(f"{lecture.name}: {q.question}")
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sets", default="tuning,report,sample")
    parser.add_argument("--modes", default=",".join(retrieval.MODES))
    parser.add_argument("-k", type=int, default=5, help="chunks retrieved per question")
    parser.add_argument("--text-weight", type=float, default=retrieval.TEXT_WEIGHT)
    parser.add_argument("--rrf-k", type=int, default=retrieval.RRF_K)
    parser.add_argument("--text-candidates", type=int, default=retrieval.TEXT_CANDIDATES)
    parser.add_argument("--text-bonus", type=float, default=retrieval.TEXT_BONUS)
    parser.add_argument("--candidates", type=int, default=retrieval.CANDIDATES)
    parser.add_argument("--fuzziness", type=int, default=retrieval.FUZZINESS,
                        help="edits a full-text term may be from a transcript word")
    parser.add_argument("-v", "--verbose", action="store_true", help="list the misses")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # Benchmark-only overrides, for tuning on the tuning set.
    retrieval.TEXT_WEIGHT = args.text_weight
    retrieval.RRF_K = args.rrf_k
    retrieval.CANDIDATES = args.candidates
    retrieval.TEXT_BONUS = args.text_bonus
    retrieval.TEXT_CANDIDATES = args.text_candidates
    retrieval.FUZZINESS = args.fuzziness
    modes = args.modes.split(",")
    embedder = LocalEmbedder()
    embedder.embed(["warm up"])
    print(f"k={args.k}, text weight {args.text_weight:g}, RRF k {args.rrf_k}, "
          f"candidates {args.candidates}, text bonus {args.text_bonus:g}; a hit is a reference "
          f"within ±{evaluation.TOLERANCE_S:g} s in the right lecture\n")
    header = (f"{'set':<8} {'mode':<7} {'q':>3}  {'hit@1':>11}  {'hit@3':>11}  {'MRR':>5}  "
              f"{'chunk@1':>7}  {'chunk@3':>7}  {'off-topic abstained':>19}")
    print(header)
    print("-" * len(header))
    for name in args.sets.split(","):
        lectures = [load(lecture) for lecture in SETS[name]]
        for problem in [p for lecture in lectures if lecture.spoken
                        for p in unheard_moments(lecture)]:
            print(f"  answer moment not heard by Whisper: {problem}")
        with tempfile.TemporaryDirectory(prefix="chronos-bench-") as tmp:
            scores = run_set(lectures, embedder, modes, args.k, Path(tmp))
        for mode, s in scores.items():
            n = len(s.ranks)
            print(f"{name:<8} {mode:<7} {n:>3}  {s.at(1):>3}/{n} {s.at(1) / n:>5.1%}  "
                  f"{s.at(TOP):>3}/{n} {s.at(TOP) / n:>5.1%}  {s.mrr:>5.3f}  "
                  f"{s.at(1, True):>7}  {s.at(TOP, True):>7}  "
                  f"{f'{s.abstained}/{s.off_topic}':>19}", flush=True)
            if args.verbose:
                for miss in s.misses:
                    print(f"    miss@3 {miss}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
