"""Retrieval benchmark: how chunk size and the extractive answerer find the answering moment.

For each chunk size (target/overlap words) the transcript is chunked with
``chunk_transcript``, the chunks are embedded with the local embedder into a temporary
LanceDB through ``VectorStore``, and every sample question is asked the way ``Answering``
asks it: embed the question, search the top-``k`` chunks, hand them to the
``ExtractiveChatModel`` (with the sentence vectors stored as the embeddings step stores
them, and the question's vector from the search). Reported per chunk size:

- chunk hit@1 / hit@3: the answering moment lies within a top-1 / top-3 chunk's
  ``[start - slack, end + slack]``;
- ref hit@1 / hit@3: the same for the answerer's first / first three quoted references;
- sent@1 / sent@3: stricter, the quoted sentence is the answering sentence itself (the
  moment lies within ``[start - 1 s, end)``: the 1 s absorbs Whisper's timing drift);
- the mean embedding tokens per chunk and how many chunks exceed the model's token limit
  (the model ignores everything past it).

It prints figures only; there are no targets. Usage (from the repository root)::

    .venv/bin/python -m benchmarks.retrieval [TRANSCRIPT_JSON] [--questions QUESTIONS_JSON]
        [--distractors OTHER_TRANSCRIPT_JSON ...] [--sizes 60/15,120/30] [-k 5]

Without a transcript it transcribes ``samples/lecture/lecture.mp4`` with the local Whisper
model first (about a minute on two cores). ``TRANSCRIPT_JSON`` is a stored
``transcript.json`` (``Transcript.to_json``); the questions file is a question file as
``chronos eval`` reads it (``{"questions": [{"question", "answer_at_s"}, ...]}``, as
``samples/lecture/questions.json``); its off-topic questions are skipped here. Distractors are
other lectures stored for the same creator, so that retrieval has to pick the right video
too (a hit counts only in the questioned video), as in a real course library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chronos_pipeline.lib import evaluation, ids
from chronos_pipeline.lib.chunking import chunk_transcript
from chronos_pipeline.lib.providers.base import Cited, Passage
from chronos_pipeline.lib.providers.extractive_chat import ExtractiveChatModel
from chronos_pipeline.lib.providers.local_embedder import LocalEmbedder
from chronos_pipeline.lib.sentence_vectors import SentenceEmbedding
from chronos_pipeline.lib.transcripts import Transcript
from chronos_pipeline.lib.vectors import VectorStore

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "samples" / "lecture"
DEFAULT_SIZES: tuple[tuple[int, int], ...] = (
    (60, 15), (120, 30), (200, 50), (500, 100), (1000, 100),
)
TITLE = "benchmark lecture"
# Whisper may start a sentence a little after the script's own time for it.
SENTENCE_DRIFT_S = 1.0


@dataclass(frozen=True)
class Question:
    question: str
    answer_at_s: float


@dataclass(frozen=True)
class Span:
    video_id: str
    start_s: float
    end_s: float

    def holds(self, video_id: str, moment: float, slack: float) -> bool:
        return (self.video_id == video_id
                and self.start_s - slack <= moment <= self.end_s + slack)

    def is_sentence_of(self, video_id: str, moment: float) -> bool:
        return (self.video_id == video_id
                and self.start_s - SENTENCE_DRIFT_S <= moment < self.end_s)


@dataclass(frozen=True)
class Row:
    target_words: int
    overlap_words: int
    chunks: int
    mean_tokens: float
    over_limit: int
    chunk_hit1: int
    chunk_hit3: int
    ref_hit1: int
    ref_hit3: int
    sentence_hit1: int
    sentence_hit3: int
    questions: int
    misses: tuple[str, ...]


def load_questions(path: Path) -> list[Question]:
    """The covered questions of a question file (off-topic ones have no moment to find)."""
    return [Question(q.question, float(q.answer_at_s or 0.0))
            for q in evaluation.load_questions(path).covered]


def load_or_transcribe(path: Path | None) -> Transcript:
    if path is not None:
        return Transcript.from_json(json.loads(path.read_text(encoding="utf-8")))
    from chronos_pipeline.lib.providers.local_whisper import LocalWhisperTranscriber

    media = SAMPLE_DIR / "lecture.mp4"
    print(f"transcribing {media.relative_to(REPO_ROOT)} with the local Whisper model ...")
    began = time.perf_counter()
    transcript, _ = LocalWhisperTranscriber().transcribe(media)
    print(f"  {transcript.word_count} words in {time.perf_counter() - began:.1f} s\n")
    return transcript


def hit_at(spans: Sequence[Span], video_id: str, moment: float, n: int, slack: float) -> bool:
    return any(span.holds(video_id, moment, slack) for span in spans[:n])


def sentence_at(spans: Sequence[Span], video_id: str, moment: float, n: int) -> bool:
    return any(span.is_sentence_of(video_id, moment) for span in spans[:n])


def run_size(
    transcript: Transcript,
    questions: Sequence[Question],
    embedder: LocalEmbedder,
    directory: Path,
    *,
    target_words: int,
    overlap_words: int,
    k: int,
    slack: float,
    distractors: Sequence[Transcript] = (),
) -> Row:
    store = VectorStore(directory / f"lance_{target_words}_{overlap_words}",
                        embedder.model_id, embedder.dimension)
    creator_id = ids.new_id("creator")
    tokens: list[int] = []
    video_id = ""
    chunk_count = 0
    for number, lecture in enumerate([transcript, *distractors]):
        chunks = chunk_transcript(lecture, target_words=target_words,
                                  overlap_words=overlap_words)
        vectors, _ = embedder.embed([c.text for c in chunks])
        # As the embeddings step stores them: the answerer scores these, embedding nothing.
        sentence_vectors, _ = SentenceEmbedding(embedder).vectors(chunks)
        stored_id = ids.new_id("video")
        store.replace_video(creator_id=creator_id, video_id=stored_id, course_id=None,
                            chunks=chunks, vectors=vectors, sentence_vectors=sentence_vectors)
        if number == 0:
            video_id = stored_id
            chunk_count = len(chunks)
            tokens = [embedder.count_tokens(c.text) for c in chunks]
    answerer = ExtractiveChatModel(embedder)

    chunk_hit1 = chunk_hit3 = ref_hit1 = ref_hit3 = sentence_hit1 = sentence_hit3 = 0
    misses: list[str] = []
    for q in questions:
        moment = q.answer_at_s
        query, _ = embedder.embed([q.question])
        hits = store.search(query[0], creator_id=creator_id, k=k)
        spans = [Span(h.video_id, h.start_s, h.end_s) for h in hits]
        chunk_hit1 += hit_at(spans, video_id, moment, 1, slack)
        chunk_hit3 += hit_at(spans, video_id, moment, 3, slack)
        passages = [Passage(h.video_id, TITLE, h.start_s, h.end_s, h.text, h.score, h.sentences,
                            h.vectors) for h in hits]
        cited: list[Passage] = []
        for event in answerer.answer(q.question, passages, query_vector=query[0]):
            if isinstance(event, Cited):
                cited = event.passages
        refs = [Span(p.video_id, p.start_s, p.end_s) for p in cited]
        ref_hit1 += hit_at(refs, video_id, moment, 1, slack)
        found = hit_at(refs, video_id, moment, 3, slack)
        ref_hit3 += found
        sentence_hit1 += sentence_at(refs, video_id, moment, 1)
        sentence_hit3 += sentence_at(refs, video_id, moment, 3)
        if not found:
            misses.append(q.question)
    return Row(
        target_words=target_words,
        overlap_words=overlap_words,
        chunks=chunk_count,
        mean_tokens=sum(tokens) / len(tokens) if tokens else 0.0,
        over_limit=sum(t > embedder.max_tokens for t in tokens),
        chunk_hit1=chunk_hit1,
        chunk_hit3=chunk_hit3,
        ref_hit1=ref_hit1,
        ref_hit3=ref_hit3,
        sentence_hit1=sentence_hit1,
        sentence_hit3=sentence_hit3,
        questions=len(questions),
        misses=tuple(misses),
    )


def print_table(rows: Sequence[Row], limit: int) -> None:
    header = (
        f"{'words/overlap':>13}  {'chunks':>6}  {'tokens':>6}  {f'>{limit}':>5}  "
        f"{'chunk@1':>7}  {'chunk@3':>7}  {'ref@1':>7}  {'ref@3':>7}  "
        f"{'sent@1':>7}  {'sent@3':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        n = r.questions
        print(
            f"{f'{r.target_words}/{r.overlap_words}':>13}  {r.chunks:>6}  "
            f"{r.mean_tokens:>6.1f}  {r.over_limit:>5}  "
            f"{f'{r.chunk_hit1}/{n}':>7}  {f'{r.chunk_hit3}/{n}':>7}  "
            f"{f'{r.ref_hit1}/{n}':>7}  {f'{r.ref_hit3}/{n}':>7}  "
            f"{f'{r.sentence_hit1}/{n}':>7}  {f'{r.sentence_hit3}/{n}':>7}"
        )
    missed = [r for r in rows if r.misses]
    if missed:
        print("\nquestions with no reference hit (±slack) in the top 3:")
        for r in missed:
            for question in r.misses:
                print(f"  {r.target_words}/{r.overlap_words}: {question}")


def parse_sizes(raw: str) -> list[tuple[int, int]]:
    sizes = []
    for item in raw.split(","):
        target, _, overlap = item.strip().partition("/")
        sizes.append((int(target), int(overlap or 0)))
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("transcript", nargs="?", type=Path,
                        help="a transcript.json (default: transcribe the sample lecture)")
    parser.add_argument("--questions", type=Path, default=SAMPLE_DIR / "questions.json",
                        help="questions with answer_at_s (default: the sample lecture's)")
    parser.add_argument("--sizes", type=parse_sizes,
                        default=list(DEFAULT_SIZES),
                        help="comma-separated target/overlap words, e.g. 60/15,120/30")
    parser.add_argument("--distractors", type=Path, nargs="*", default=[],
                        help="other transcript.json files stored for the same creator")
    parser.add_argument("-k", type=int, default=5, help="chunks retrieved per question")
    parser.add_argument("--slack", type=float, default=10.0,
                        help="seconds either side of a chunk or reference that still count")
    args = parser.parse_args(argv)
    # Counting a long chunk's tokens is the point here, not a warning; no progress bars.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    transcript = load_or_transcribe(args.transcript)
    questions = load_questions(args.questions)
    distractors = [load_or_transcribe(path) for path in args.distractors]
    embedder = LocalEmbedder()
    print(f"{len(questions)} questions, {transcript.word_count} transcript words, "
          f"{transcript.duration_s:.0f} s, {len(distractors)} distractor lecture(s); "
          f"k={args.k}, slack ±{args.slack:g} s; "
          f"embedder {embedder.model_id} (limit {embedder.max_tokens} tokens)\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="chronos-bench-") as tmp:
        for target, overlap in args.sizes:
            rows.append(run_size(transcript, questions, embedder, Path(tmp),
                                 target_words=target, overlap_words=overlap,
                                 k=args.k, slack=args.slack, distractors=distractors))
    print_table(rows, embedder.max_tokens)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
