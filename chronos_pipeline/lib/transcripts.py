"""The transcript of one video: segments with word timings, as the pipeline stores it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class Transcript:
    language: str
    duration_s: float
    segments: list[Segment]
    model: str

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments).strip()

    @property
    def word_count(self) -> int:
        return sum(len(s.text.split()) for s in self.segments)

    def to_json(self, video_id: str) -> dict[str, Any]:
        """The public form (``chronos transcript --json``)."""
        return {
            "video_id": video_id,
            "language": self.language,
            "duration_s": self.duration_s,
            "model": self.model,
            "segments": [asdict(s) for s in self.segments],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transcript:
        return cls(
            language=data["language"],
            duration_s=float(data["duration_s"]),
            model=data.get("model", ""),
            segments=[
                Segment(
                    start_s=float(s["start_s"]),
                    end_s=float(s["end_s"]),
                    text=s["text"],
                    words=[Word(w["word"], float(w["start_s"]), float(w["end_s"]))
                           for w in s.get("words", [])],
                )
                for s in data["segments"]
            ],
        )


def repetition_ratio(text: str, n: int = 4) -> float:
    """Share of word n-grams that are repeats: near 1.0 means a decoding loop."""
    words = text.lower().split()
    if len(words) < n * 3:
        return 0.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams)
