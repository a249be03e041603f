"""Probing decides what a file is by its content, and says why it refuses one."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronos_pipeline.lib.errors import UnsupportedMediaError, ValidationError
from chronos_pipeline.lib.media import probe, thumbnail_jpeg
from tests.conftest import SAMPLE_MP4
from tests.media import faststart_copy, make_video, truncated_copy


def test_sample_lecture_is_accepted_with_its_facts() -> None:
    facts = probe(SAMPLE_MP4)
    assert facts.extension == "mp4"
    assert 190 < facts.duration_s < 210
    assert facts.has_video and facts.audio_codec == "aac"


@pytest.mark.parametrize(
    ("container", "video_codec", "audio_codec", "extension"),
    [
        ("mkv", "h264", "aac", "mkv"),
        ("webm", "libvpx", "libopus", "mkv"),
        ("mov", "h264", "aac", "mp4"),
        ("avi", "mpeg4", "libmp3lame", "avi"),
    ],
)
def test_other_containers_are_accepted_by_content(
    tmp_path: Path, container: str, video_codec: str, audio_codec: str, extension: str
) -> None:
    path = make_video(tmp_path / f"clip.{container}", container=container,
                      video_codec=video_codec, audio_codec=audio_codec)
    renamed = path.rename(tmp_path / "clip.bin")
    facts = probe(renamed)
    assert facts.extension == extension
    assert 2.5 < facts.duration_s < 3.6


def test_text_file_named_mp4_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("These are my lecture notes, not a video.\n" * 50)
    with pytest.raises(UnsupportedMediaError, match="not a video we can read"):
        probe(path)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(UnsupportedMediaError):
        probe(path)


def test_mp4_with_its_index_at_the_end_cut_in_half_is_unreadable(tmp_path: Path) -> None:
    path = truncated_copy(SAMPLE_MP4, tmp_path / "half.mp4", 0.5)
    with pytest.raises(UnsupportedMediaError, match="not a video we can read"):
        probe(path)


def test_faststart_mp4_cut_in_half_is_rejected_as_truncated(tmp_path: Path) -> None:
    # The trap: with the index first, half a file opens and reports the full duration.
    whole = faststart_copy(SAMPLE_MP4, tmp_path / "faststart.mp4")
    assert probe(whole).duration_s > 190
    half = truncated_copy(whole, tmp_path / "half.mp4", 0.5)
    with pytest.raises(UnsupportedMediaError, match="truncated"):
        probe(half)


def test_video_without_audio_is_rejected(tmp_path: Path) -> None:
    path = make_video(tmp_path / "mute.mp4", audio=None)
    with pytest.raises(UnsupportedMediaError, match="no audio track"):
        probe(path)


def test_thumbnail_is_a_jpeg() -> None:
    data = thumbnail_jpeg(SAMPLE_MP4)
    assert data is not None and data[:3] == b"\xff\xd8\xff"


def test_lecture_shorter_than_the_minimum_is_refused_with_its_length(tmp_path: Path) -> None:
    path = make_video(tmp_path / "short.mp4", seconds=0.4)
    with pytest.raises(ValidationError, match=r"is 0\.4 s long; lectures must be at least 1 s"):
        probe(path, min_duration_s=1.0)
    assert probe(path, min_duration_s=0.25).duration_s == pytest.approx(0.4, abs=0.1)
