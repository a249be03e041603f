"""OpenAI transcription: long audio cut at silences, pieces sent concurrently, times stitched."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from chronos_pipeline.lib.audio_pieces import cut_points
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.openai_transcriber import OpenAITranscriber
from chronos_pipeline.lib.providers.provider_errors import ProviderRefused
from tests.loopback import Loopback, loopback

RATE = 16000


def long_audio(path: Path, minutes: float) -> Path:
    """Speech-like audio: 4 s of tone, 1 s of silence, repeated, as AAC in MP4."""
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=RATE)
        stream.layout = "mono"
        t = np.arange(5 * RATE) / RATE
        block = np.where(t < 4, 0.2 * np.sin(2 * np.pi * 220 * t), 0.0).astype(np.float32)
        pts = 0
        for _ in range(int(minutes * 60 / 5)):
            for start in range(0, len(block), 1024):
                frame = av.AudioFrame.from_ndarray(block[start : start + 1024].reshape(1, -1),
                                                   format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = RATE, pts, Fraction(1, RATE)
                pts += frame.samples
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback() as state:
        yield state


def test_cuts_fall_in_silences_and_respect_the_limit() -> None:
    t = np.arange(60 * RATE) / RATE
    samples = np.where((t % 5) < 4, 0.2 * np.sin(2 * np.pi * 220 * t), 0.0).astype(np.float32)
    starts = cut_points(samples, max_seconds=17.0)
    assert starts[0] == 0 and len(starts) >= 4
    for previous, start in itertools.pairwise(starts):
        assert start - previous <= 17 * RATE
        assert (start / RATE) % 5 >= 4.0  # inside a pause


@pytest.mark.slow
def test_sixty_minutes_split_and_stitched_onto_the_videos_clock(
    server: Loopback, tmp_path: Path
) -> None:
    media = long_audio(tmp_path / "hour.mp4", 60)
    billed: list[Usage] = []
    transcriber = OpenAITranscriber(api_key="sk-test", base_url=f"{server.base_url}/v1",
                                    max_piece_bytes=3 * 1024 * 1024, concurrency=3)
    transcript, total = transcriber.transcribe(media, on_usage=billed.append)

    assert len(server.pieces) >= 5
    assert len(billed) == len(server.pieces) == server.served("/v1/audio/transcriptions")
    assert all(len(body["file"]) <= 3 * 1024 * 1024
               for path, body in server.requests if path == "/v1/audio/transcriptions")
    assert total.quantities["audio_second"] == pytest.approx(3600, abs=2)
    assert sum(u.quantities["audio_second"] for u in billed) == pytest.approx(
        total.quantities["audio_second"])

    starts = [s.start_s for s in transcript.segments]
    assert starts == sorted(starts) and all(s.start_s < s.end_s for s in transcript.segments)
    offset = 0.0
    expected = []
    for index in sorted(server.pieces):
        for segment in server.pieces[index]["segments"]:
            expected.append((offset + segment["start"], offset + segment["end"]))
        offset += server.pieces[index]["duration"]
    assert len(expected) == len(transcript.segments)
    for (start, end), segment in zip(expected, transcript.segments, strict=True):
        assert abs(segment.start_s - start) <= 0.5 and abs(segment.end_s - end) <= 0.5
    assert transcript.segments[-1].end_s == pytest.approx(3600, abs=2)
    words = [w for s in transcript.segments for w in s.words]
    assert all(s.start_s - 0.01 <= w.start_s for s in transcript.segments for w in s.words)
    assert len(words) == 4 * len(transcript.segments)


def test_a_refused_piece_stops_the_rest_and_billed_pieces_stay_recorded(
    server: Loopback, tmp_path: Path
) -> None:
    media = long_audio(tmp_path / "short.mp4", 3)
    server.faults["/v1/audio/transcriptions"] = ["ok", "401"]
    billed: list[Usage] = []
    transcriber = OpenAITranscriber(api_key="sk-test", base_url=f"{server.base_url}/v1",
                                    max_piece_bytes=200_000, concurrency=1, max_retries=0)
    with pytest.raises(ProviderRefused, match="refused the API key"):
        transcriber.transcribe(media, on_usage=billed.append)
    assert server.served("/v1/audio/transcriptions") == 2  # the third piece never went out
    assert len(billed) == 1 and billed[0].quantities["audio_second"] > 0
