"""A stored transcript as the files people download: SRT, WebVTT, plain text and JSON.

Captions are cut into cues short enough to read (at most ~7 s and ~84 characters, two
lines of ~42), sentence by sentence across Whisper's segments, timed by the words' own
times when the transcript has them and by character position otherwise. Cue text comes
from the segment text (it keeps punctuation; some providers' word lists do not).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from chronos_pipeline.lib.errors import ConflictError, NotFoundError
from chronos_pipeline.lib.timefmt import timestamp
from chronos_pipeline.lib.transcripts import Segment, Transcript

if TYPE_CHECKING:
    from chronos_pipeline.lib.catalog import Video
    from chronos_pipeline.lib.storage import Storage

MAX_CUE_S = 7.0
MAX_CUE_CHARS = 84
LINE_CHARS = 42
# A silence this long between words ends a caption even without punctuation.
PAUSE_S = 1.5
# A long sentence is cut near its middle, preferably after a comma: a cut up to this
# share of the sentence's length away from the middle is worth it to land on one.
CLAUSE_BONUS = 0.15
MIN_CUE_S = 0.001
_SENTENCE_END = (".", "?", "!", "…")
_CLAUSE_END = (",", ";", ":", "—")


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class _Token:
    text: str
    start_s: float
    end_s: float


def cues(transcript: Transcript, *, max_s: float = MAX_CUE_S,
         max_chars: int = MAX_CUE_CHARS) -> list[Cue]:
    """The transcript cut into readable caption cues, in order and never overlapping.

    Whisper's segments end wherever its 30-second windows do, often mid-phrase, so the
    words are re-flowed: cut into sentences (or at pauses), and a sentence too long for
    one cue is halved at its most natural point near the middle until every part fits.
    """
    tokens = [t for segment in transcript.segments for t in _timed_tokens(segment)]
    pieces: list[list[_Token]] = []
    for sentence in _sentences(tokens):
        pieces.extend(_fit(sentence, max_s, max_chars))
    ordered: list[Cue] = []
    previous_end = 0.0
    for piece in pieces:
        start = max(piece[0].start_s, previous_end)
        end = max(piece[-1].end_s, start + MIN_CUE_S)
        ordered.append(Cue(start, end, _join(piece)))
        previous_end = end
    return ordered


def _sentences(tokens: list[_Token]) -> list[list[_Token]]:
    sentences: list[list[_Token]] = []
    current: list[_Token] = []
    for i, token in enumerate(tokens):
        current.append(token)
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if (following is None or token.text.endswith(_SENTENCE_END)
                or following.start_s - token.end_s >= PAUSE_S):
            sentences.append(current)
            current = []
    return sentences


def _fits(tokens: list[_Token], max_s: float, max_chars: int) -> bool:
    return (len(tokens) == 1
            or (len(_join(tokens)) <= max_chars and tokens[-1].end_s - tokens[0].start_s <= max_s))


def _fit(tokens: list[_Token], max_s: float, max_chars: int) -> list[list[_Token]]:
    """Halve ``tokens`` at the best break near the middle until every part fits a cue."""
    if _fits(tokens, max_s, max_chars):
        return [tokens]
    total = len(_join(tokens))
    best, best_cost = 1, float("inf")
    length = 0
    for i, token in enumerate(tokens[:-1], start=1):
        length += len(token.text) + (1 if i > 1 else 0)
        cost = abs(length - total / 2) / total
        if token.text.endswith(_CLAUSE_END):
            cost -= CLAUSE_BONUS
        if cost < best_cost:
            best, best_cost = i, cost
    return _fit(tokens[:best], max_s, max_chars) + _fit(tokens[best:], max_s, max_chars)


def _join(tokens: Iterable[_Token]) -> str:
    return " ".join(t.text for t in tokens)


def _timed_tokens(segment: Segment) -> list[_Token]:
    """The segment's words with times: its own word times, else spread by characters."""
    texts = segment.text.split()
    if not texts:
        return []
    words = segment.words
    if words:
        # Same count: pair them. Otherwise map each token proportionally onto the words.
        n, w = len(texts), len(words)
        return [
            _Token(text, words[min(w - 1, i * w // n)].start_s,
                   words[min(w - 1, ((i + 1) * w - 1) // n)].end_s)
            for i, text in enumerate(texts)
        ]
    total = sum(len(t) + 1 for t in texts)
    span = max(0.0, segment.end_s - segment.start_s)
    tokens = []
    offset = 0
    for text in texts:
        start = segment.start_s + span * offset / total
        offset += len(text) + 1
        tokens.append(_Token(text, start, segment.start_s + span * offset / total))
    return tokens


def wrap(text: str, width: int = LINE_CHARS) -> str:
    """One line, or two lines split at the space nearest the middle."""
    if len(text) <= width or " " not in text:
        return text
    middle = len(text) // 2
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    cut = min(spaces, key=lambda i: abs(i - middle))
    return f"{text[:cut]}\n{text[cut + 1:]}"


def clock(seconds: float, separator: str) -> str:
    """``HH:MM:SS<sep>mmm``, rounded to the millisecond."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{i}\n{clock(c.start_s, ',')} --> {clock(c.end_s, ',')}\n{wrap(c.text)}\n"
        for i, c in enumerate(cues(transcript), start=1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(transcript: Transcript) -> str:
    blocks = ["WEBVTT\n"]
    blocks.extend(
        f"{clock(c.start_s, '.')} --> {clock(c.end_s, '.')}\n{_vtt_escape(wrap(c.text))}\n"
        for c in cues(transcript)
    )
    return "\n".join(blocks)


def to_txt(transcript: Transcript) -> str:
    return "".join(f"[{timestamp(s.start_s)}] {' '.join(s.text.split())}\n"
                   for s in transcript.segments if s.text.strip())


def to_public_json(transcript: Transcript, video_id: str) -> str:
    """The form ``chronos transcript --json`` prints (the model id is internal)."""
    data = transcript.to_json(video_id)
    data.pop("model", None)
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class TranscriptFormat:
    name: str
    extension: str
    media_type: str
    render: Callable[[Transcript, str], str]


FORMATS: dict[str, TranscriptFormat] = {
    "srt": TranscriptFormat("srt", "srt", "application/x-subrip; charset=utf-8",
                            lambda t, _v: to_srt(t)),
    "vtt": TranscriptFormat("vtt", "vtt", "text/vtt; charset=utf-8", lambda t, _v: to_vtt(t)),
    "txt": TranscriptFormat("txt", "txt", "text/plain; charset=utf-8", lambda t, _v: to_txt(t)),
    "json": TranscriptFormat("json", "json", "application/json", to_public_json),
}


def transcript_format(name: str) -> TranscriptFormat:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise NotFoundError(
            f"unknown transcript format {name!r}; choose one of {', '.join(FORMATS)}"
        ) from None


def render(transcript: Transcript, fmt: str, video_id: str) -> str:
    return transcript_format(fmt).render(transcript, video_id)


def safe_filename(title: str, extension: str, *, fallback: str = "transcript") -> str:
    """An ASCII file name from a title: no quotes, slashes or control characters."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9 ._()\-]+", " ", ascii_title)
    cleaned = " ".join(cleaned.split()).strip(" .")[:80].strip(" .")
    return f"{cleaned or fallback}.{extension}"


def content_disposition(title: str, extension: str, *, inline: bool = False) -> str:
    """``attachment; filename="…"`` (plus ``filename*`` for titles beyond ASCII)."""
    kind = "inline" if inline else "attachment"
    name = safe_filename(title, extension)
    header = f'{kind}; filename="{name}"'
    full = " ".join(re.sub(r'[\x00-\x1f"/\\]+', " ", title).split())[:80]
    if full and not full.isascii():
        header += f"; filename*=UTF-8''{quote(f'{full}.{extension}', safe='')}"
    return header


@dataclass(frozen=True)
class TranscriptFile:
    """A rendered transcript with what an HTTP response needs to describe it."""

    text: str
    media_type: str
    content_disposition: str


def transcript_file(storage: Storage, video: Video, fmt: str, *,
                    inline: bool = False) -> TranscriptFile:
    """The video's transcript in ``fmt``; ConflictError until it is transcribed.

    ``video`` is one the caller may read (its access check already passed).
    """
    from chronos_pipeline.lib.steps import TRANSCRIPT

    chosen = transcript_format(fmt)
    if not (storage.video_dir(video.creator_id, video.id) / TRANSCRIPT).is_file():
        raise ConflictError(f"video {video.id} has no transcript yet (status {video.status})")
    transcript = Transcript.from_json(storage.read_json(video.creator_id, video.id, TRANSCRIPT))
    return TranscriptFile(
        text=chosen.render(transcript, video.id),
        media_type=chosen.media_type,
        content_disposition=content_disposition(video.title, chosen.extension, inline=inline),
    )
