"""Transcript downloads: captions a player accepts, timed to the millisecond, readable cues."""

from __future__ import annotations

import json
import re
from itertools import pairwise

import pytest

from chronos_pipeline.lib.errors import NotFoundError
from chronos_pipeline.lib.transcript_formats import (
    MAX_CUE_CHARS,
    MAX_CUE_S,
    content_disposition,
    cues,
    render,
    safe_filename,
    to_srt,
    to_txt,
    to_vtt,
)
from chronos_pipeline.lib.transcripts import Segment, Transcript, Word

SENTENCE = ("The relative strength index compares the size of recent gains with recent "
            "losses over fourteen periods, and readings above seventy are called overbought "
            "while readings below thirty are called oversold by most traders.")
VTT_TIME = r"(\d{2}):(\d{2}):(\d{2})\.(\d{3})"
SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"


def _timed_segment(text: str, start_s: float, seconds_per_word: float) -> Segment:
    words = [Word(w, round(start_s + i * seconds_per_word, 3),
                  round(start_s + (i + 0.8) * seconds_per_word, 3))
             for i, w in enumerate(text.split())]
    return Segment(start_s, words[-1].end_s, text, words)


def _lecture() -> Transcript:
    return Transcript(
        language="en", duration_s=4000.0, model="test",
        segments=[
            Segment(1.234, 3.5, " Welcome back to the course.",
                    _timed_segment("Welcome back to the course.", 1.234, 0.45).words),
            _timed_segment(SENTENCE, 4.0, 0.37),
            # No word times: cut by characters, still inside the segment's span.
            Segment(60.0, 80.0, SENTENCE),
            # Past the hour, with characters WebVTT must escape.
            _timed_segment("Profit < loss & fees > zero.", 3725.5, 0.5),
        ],
    )


def _seconds(match: tuple[str, ...]) -> float:
    h, m, s, ms = (int(x) for x in match)
    return h * 3600 + m * 60 + s + ms / 1000


def _parse(text: str, time_pattern: str) -> list[tuple[float, float, str]]:
    """Read cues back the way a player does: a timing line, then text lines to a blank."""
    parsed = []
    blocks = [b for b in text.strip().split("\n\n") if "-->" in b]
    for block in blocks:
        lines = block.split("\n")
        index = next(i for i, line in enumerate(lines) if "-->" in line)
        timing = re.fullmatch(rf"{time_pattern} --> {time_pattern}", lines[index])
        assert timing is not None, lines[index]
        groups = timing.groups()
        parsed.append((_seconds(groups[:4]), _seconds(groups[4:]), " ".join(lines[index + 1:])))
    return parsed


def test_vtt_is_valid_and_its_timings_read_back_to_the_millisecond() -> None:
    transcript = _lecture()
    vtt = to_vtt(transcript)
    assert vtt.startswith("WEBVTT\n\n")
    parsed = _parse(vtt, VTT_TIME)
    expected = cues(transcript)
    assert [(round(a, 3), round(b, 3)) for a, b, _ in parsed] == [
        (round(c.start_s, 3), round(c.end_s, 3)) for c in expected]
    assert parsed[0][0] == 1.234
    assert "01:02:05.500 --> " in vtt
    assert "Profit &lt; loss &amp; fees &gt; zero." in vtt
    text = " ".join(t for _, _, t in parsed).replace("&lt;", "<").replace("&amp;", "&")
    assert text.replace("&gt;", ">") == transcript.text


def test_srt_is_numbered_with_comma_millis_and_reads_back() -> None:
    transcript = _lecture()
    srt = to_srt(transcript)
    blocks = srt.strip().split("\n\n")
    assert [b.split("\n")[0] for b in blocks] == [str(i) for i in range(1, len(blocks) + 1)]
    parsed = _parse(srt, SRT_TIME)
    assert parsed[0][:2] == (1.234, pytest.approx(1.234 + 4 * 0.45 + 0.8 * 0.45, abs=1e-3))
    assert " ".join(t for _, _, t in parsed) == transcript.text
    assert srt.endswith("\n") and "\n\n\n" not in srt


def test_long_segments_become_short_cues_timed_by_their_words() -> None:
    transcript = _lecture()
    result = cues(transcript)
    assert len(result) > len(transcript.segments)
    for cue in result:
        assert len(cue.text) <= MAX_CUE_CHARS
        assert cue.end_s - cue.start_s <= MAX_CUE_S + 1e-6
    # In order, never overlapping, and each cue starts on one of the segment's words.
    assert all(a.end_s <= b.start_s for a, b in pairwise(result))
    word_starts = {w.start_s for w in transcript.segments[1].words}
    inside = [c for c in result if 4.0 <= c.start_s < 60.0]
    assert len(inside) >= 3 and all(c.start_s in word_starts for c in inside)
    # Without word times the cues still cover the segment and stay inside it.
    untimed = [c for c in result if 60.0 <= c.start_s < 80.0]
    assert untimed[0].start_s == 60.0 and untimed[-1].end_s == pytest.approx(80.0)


def test_a_sentence_cut_by_whisper_mid_phrase_is_captioned_without_orphan_words() -> None:
    first = "Today we will look at two of the most widely used tools in technical analysis, moving"
    transcript = Transcript(language="en", duration_s=20.0, model="test", segments=[
        _timed_segment(first, 6.0, 0.32),
        _timed_segment("averages and the relative strength index.", 11.2, 0.32),
    ])
    texts = [c.text for c in cues(transcript)]
    assert texts == [
        "Today we will look at two of the most widely used tools in technical analysis,",
        "moving averages and the relative strength index.",
    ]


def test_cue_lines_are_wrapped_in_two_for_reading() -> None:
    vtt = to_vtt(_lecture())
    for block in vtt.split("\n\n")[1:]:
        lines = block.strip().split("\n")[1:]
        assert 1 <= len(lines) <= 2


def test_txt_has_one_line_per_segment_with_its_time() -> None:
    lines = to_txt(_lecture()).splitlines()
    assert lines[0] == "[00:01] Welcome back to the course."
    assert lines[2].startswith("[01:00] The relative strength index")
    assert lines[3] == "[1:02:05] Profit < loss & fees > zero."
    assert len(lines) == 4


def test_json_is_the_public_form_without_the_model() -> None:
    data = json.loads(render(_lecture(), "json", "vd_0123456789abcdef"))
    assert set(data) == {"video_id", "language", "duration_s", "segments"}
    assert data["segments"][0]["words"][0] == {"word": "Welcome", "start_s": 1.234,
                                               "end_s": 1.594}


def test_unknown_format_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="srt, vtt, txt, json"):
        render(_lecture(), "docx", "vd_0123456789abcdef")


def test_download_names_are_safe() -> None:
    assert safe_filename('RSI: "overbought"/oversold?', "srt") == "RSI overbought oversold.srt"
    assert safe_filename("../../etc/passwd", "txt") == "etc passwd.txt"
    assert safe_filename("???", "vtt") == "transcript.vtt"
    header = content_disposition("Café théorie", "vtt")
    assert header.startswith('attachment; filename="Cafe theorie.vtt"')
    assert "filename*=UTF-8''Caf%C3%A9%20th%C3%A9orie.vtt" in header
    assert content_disposition("Lecture 1", "vtt", inline=True) == (
        'inline; filename="Lecture 1.vtt"')
