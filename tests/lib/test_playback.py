"""The playback rendition: browser codecs are copied untouched, anything else re-encoded."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import pytest

from chronos_pipeline.lib.playback import (
    PLAYBACK,
    make_playback,
    playable_file,
    web_size,
    write_playback,
)
from chronos_pipeline.lib.services import Services
from tests.conftest import SAMPLE_MP4
from tests.media import make_video


def _top_level_boxes(path: Path) -> list[str]:
    boxes = []
    with open(path, "rb") as handle:
        while header := handle.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", handle.read(8))[0] - 8
            boxes.append(kind.decode("latin-1"))
            handle.seek(size - 8, 1)
    return boxes


def _packets(path: Path) -> dict[str, tuple[int, int]]:
    """Per stream type: how many packets, and how many bytes of media they carry."""
    found: dict[str, tuple[int, int]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size:
                count, size = found.get(packet.stream.type, (0, 0))
                found[packet.stream.type] = (count + 1, size + packet.size)
    return found


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


def _decoded_seconds(path: Path) -> tuple[float, float, int]:
    """Seconds of decoded picture and sound, and the picture height, as a player gets them."""
    video_end = audio_end = 0.0
    height = 0
    with av.open(str(path)) as container:
        streams = (container.streams.video[0], container.streams.audio[0])
        for frame in container.decode(*streams):
            assert frame.time is not None
            if isinstance(frame, av.VideoFrame):
                rate = streams[0].average_rate or 25
                video_end = max(video_end, frame.time + float(1 / rate))
                height = frame.height
            elif isinstance(frame, av.AudioFrame):
                audio_end = max(audio_end, frame.time + frame.samples / frame.sample_rate)
    return video_end, audio_end, height


def _to_mkv(source: Path, target: Path) -> Path:
    with av.open(str(source)) as src, av.open(str(target), mode="w", format="matroska") as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.size:
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
    return target


def test_sample_mp4_is_remuxed_with_the_same_streams_and_its_index_first(
    tmp_path: Path,
) -> None:
    assert _top_level_boxes(SAMPLE_MP4).index("moov") > _top_level_boxes(SAMPLE_MP4).index(
        "mdat")  # the sample has its index at the end, as most encoders write it
    target = tmp_path / "playback.mp4"
    report = make_playback(SAMPLE_MP4, target)
    assert report.mode == "remux" and report.codecs_summary == "h264/aac"
    assert report.bytes == target.stat().st_size
    boxes = _top_level_boxes(target)
    assert boxes[0] == "ftyp" and boxes.index("moov") < boxes.index("mdat")
    assert _packets(target) == _packets(SAMPLE_MP4)
    assert _duration(target) == pytest.approx(_duration(SAMPLE_MP4), abs=0.05)


def test_h264_aac_in_mkv_is_remuxed_into_a_playable_mp4(tmp_path: Path) -> None:
    mkv = _to_mkv(SAMPLE_MP4, tmp_path / "lecture.mkv")
    target = tmp_path / "playback.mp4"
    report = make_playback(mkv, target)
    assert report.mode == "remux" and (report.video_action, report.audio_action) == (
        "copy", "copy")
    assert _packets(target) == _packets(SAMPLE_MP4)
    assert _top_level_boxes(target)[:2] == ["ftyp", "moov"]
    video_s, audio_s, _ = _decoded_seconds(target)
    assert video_s == pytest.approx(_duration(SAMPLE_MP4), abs=0.6)
    assert audio_s == pytest.approx(_duration(SAMPLE_MP4), abs=0.1)


def test_mpeg4_part2_avi_is_transcoded_to_h264_that_plays_for_as_long(tmp_path: Path) -> None:
    source = make_video(tmp_path / "old.avi", seconds=8, container="avi", video_codec="mpeg4",
                        audio_codec="libmp3lame")
    target = tmp_path / "playback.mp4"
    report = make_playback(source, target)
    assert report.mode == "transcode"
    assert (report.source_video_codec, report.video_codec, report.video_action) == (
        "mpeg4", "h264", "encode")
    assert (report.audio_codec, report.audio_action) == ("mp3", "copy")  # MP3 plays as is
    with av.open(str(target)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    video_s, audio_s, height = _decoded_seconds(target)
    assert video_s == pytest.approx(8.0, abs=0.5)
    assert audio_s == pytest.approx(8.0, abs=0.5)
    assert height == 48
    assert _top_level_boxes(target)[:2] == ["ftyp", "moov"]


def test_vp8_opus_webm_is_transcoded_to_h264_and_aac(tmp_path: Path) -> None:
    source = make_video(tmp_path / "clip.webm", seconds=5, container="webm",
                        video_codec="libvpx", audio_codec="libopus")
    target = tmp_path / "playback.mp4"
    report = make_playback(source, target)
    assert report.codecs_summary == "h264/aac" and report.mode == "transcode"
    video_s, audio_s, _ = _decoded_seconds(target)
    assert video_s == pytest.approx(5.0, abs=0.5) and audio_s == pytest.approx(5.0, abs=0.5)


@pytest.mark.parametrize("codec", ["aac", "mp3"])
def test_audio_only_aac_or_mp3_is_remuxed_without_a_picture(tmp_path: Path, codec: str) -> None:
    source = tmp_path / f"talk.{codec}.mkv"
    with av.open(str(SAMPLE_MP4)) as src, av.open(str(source), "w", format="matroska") as out:
        audio = src.streams.audio[0]
        encoder = out.add_stream("aac" if codec == "aac" else "libmp3lame",
                                 rate=audio.codec_context.sample_rate)
        encoder.layout = "mono"
        for frame in src.decode(audio):
            if frame.time is not None and frame.time > 10:
                break
            frame.pts = None
            for packet in encoder.encode(frame):
                out.mux(packet)
        for packet in encoder.encode(None):
            out.mux(packet)
    target = tmp_path / "playback.mp4"
    report = make_playback(source, target)
    assert report.mode == "remux" and report.codecs_summary == f"-/{codec}"
    with av.open(str(target)) as container:
        assert not container.streams.video and len(container.streams.audio) == 1
    assert _duration(target) == pytest.approx(10.0, abs=0.3)


def test_a_720p_source_is_transcoded_down_to_480_lines(tmp_path: Path) -> None:
    source = tmp_path / "hd.avi"
    with av.open(str(source), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        audio = out.add_stream("libmp3lame", rate=16000)
        audio.layout = "mono"
        for i in range(10):
            picture = np.full((720, 1280, 3), i * 25, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        silence = np.zeros((1, 1152), dtype=np.float32)
        for _ in range(28):
            frame = av.AudioFrame.from_ndarray(silence, format="flt", layout="mono")
            frame.sample_rate = 16000
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)
    target = tmp_path / "playback.mp4"
    assert make_playback(source, target).video_action == "encode"
    video_s, _audio_s, height = _decoded_seconds(target)
    with av.open(str(target)) as container:
        context = container.streams.video[0].codec_context
        assert (context.width, context.height) == (852, 480) and height == 480
    assert video_s == pytest.approx(2.0, abs=0.5)


def test_web_rendition_is_at_most_480_lines_with_even_sides() -> None:
    assert web_size(1920, 1080) == (852, 480)
    assert web_size(1280, 720) == (852, 480)
    assert web_size(640, 360) == (640, 360)
    assert web_size(63, 47) == (62, 46)


def test_playback_is_stored_beside_the_source_and_preferred_for_streaming(
    services: Services, creator: tuple[str, str],
) -> None:
    creator_id = creator[0]
    video = services.ingest.ingest_file(creator_id, SAMPLE_MP4, title="Lecture")
    before = playable_file(services.storage, creator_id, video.id)
    assert before.path.name == "source.mp4" and before.media_type == "video/mp4"
    write_playback(services.storage, creator_id, video.id)
    folder = services.storage.video_dir(creator_id, video.id)
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json", PLAYBACK, "source.mp4"]  # no temporary file left behind
    after = playable_file(services.storage, creator_id, video.id)
    assert after.path == folder / PLAYBACK and after.size == after.path.stat().st_size
