"""Cutting a transcript into timestamped chunks for retrieval.

Sentences are rebuilt from word timings (a Whisper segment can hold several sentences or
half of one), then packed into chunks of about ``target_words`` words that overlap by
whole sentences worth about ``overlap_words`` words. Every chunk keeps its sentences with
their own times, so an answer can cite the exact sentence rather than the chunk.

Why about 120 words and not the 500–1000 the inherited plan named: all-MiniLM-L6-v2 reads
at most 256 word pieces (≈ 200 words) and ignores the rest, and the retrieval benchmark
(``make bench``) scored short chunks higher on the sample lecture's questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chronos_pipeline.lib.transcripts import Segment, Transcript

if TYPE_CHECKING:
    from chronos_pipeline.lib.storage import Storage

# A video's chunks, as the chunking step writes them under the video's folder.
CHUNKS_FILE = "chunks.json"
SENTENCE_END = (".", "?", "!")
MAX_SENTENCE_WORDS = 40


@dataclass(frozen=True)
class Sentence:
    start_s: float
    end_s: float
    text: str

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class Chunk:
    index: int
    start_s: float
    end_s: float
    text: str
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def word_count(self) -> int:
        return len(self.text.split())

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.text,
            "sentences": [[s.start_s, s.end_s, s.text] for s in self.sentences],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chunk:
        return cls(
            index=int(data["index"]),
            start_s=float(data["start_s"]),
            end_s=float(data["end_s"]),
            text=data["text"],
            sentences=[Sentence(float(a), float(b), str(t)) for a, b, t in data["sentences"]],
        )


def _segment_sentences(segment: Segment) -> list[Sentence]:
    if not segment.words:
        return [Sentence(segment.start_s, segment.end_s, segment.text.strip())]
    sentences: list[Sentence] = []
    current: list[str] = []
    start = segment.words[0].start_s
    for word in segment.words:
        if not current:
            start = word.start_s
        current.append(word.word)
        if word.word.endswith(SENTENCE_END) or len(current) >= MAX_SENTENCE_WORDS:
            sentences.append(Sentence(start, word.end_s, " ".join(current)))
            current = []
    if current:
        sentences.append(Sentence(start, segment.words[-1].end_s, " ".join(current)))
    return sentences


def sentences(transcript: Transcript) -> list[Sentence]:
    """Sentences with times, merging a sentence that runs across segment boundaries."""
    out: list[Sentence] = []
    for segment in transcript.segments:
        for sentence in _segment_sentences(segment):
            if (
                out
                and not out[-1].text.endswith(SENTENCE_END)
                and out[-1].words + sentence.words <= MAX_SENTENCE_WORDS
            ):
                previous = out.pop()
                sentence = Sentence(previous.start_s, sentence.end_s,
                                    f"{previous.text} {sentence.text}")
            out.append(sentence)
    return [s for s in out if s.text]


def chunk_transcript(
    transcript: Transcript, *, target_words: int = 120, overlap_words: int = 30
) -> list[Chunk]:
    """Pack sentences into overlapping chunks of about ``target_words`` words."""
    if overlap_words >= target_words:
        raise ValueError("overlap must be smaller than the chunk")
    items = sentences(transcript)
    chunks: list[Chunk] = []
    start = 0
    while start < len(items):
        end = start
        words = 0
        while end < len(items) and (words == 0 or words + items[end].words <= target_words):
            words += items[end].words
            end += 1
        group = items[start:end]
        chunks.append(
            Chunk(
                index=len(chunks),
                start_s=group[0].start_s,
                end_s=group[-1].end_s,
                text=" ".join(s.text for s in group),
                sentences=group,
            )
        )
        if end >= len(items):
            break
        # Step back over whole sentences worth about overlap_words, but always move on.
        back = end
        carried = 0
        while back - 1 > start and carried + items[back - 1].words <= overlap_words:
            back -= 1
            carried += items[back].words
        start = back
    return chunks


def read_chunks(storage: Storage, creator_id: str, video_id: str) -> list[Chunk]:
    """The chunks the chunking step stored for a video (``PipelineStateError`` if none)."""
    return [Chunk.from_json(c) for c in storage.read_json(creator_id, video_id, CHUNKS_FILE)]
