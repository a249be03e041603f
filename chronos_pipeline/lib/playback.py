"""A rendition of the lecture every browser plays: ``playback.mp4`` beside the source.

A ``<video>`` element plays H.264 (8-bit 4:2:0) with AAC or MP3 in MP4 everywhere. When the
upload already holds those codecs, its streams are copied into a new MP4 untouched (a
remux: seconds, not minutes, for an hour of video); an MKV of H.264/AAC becomes playable
this way. Any other codec is re-encoded into a modest web rendition: H.264 at most 480
lines high and AAC at 96 kb/s. Either way the index (``moov``) is written before the
media data (``+faststart``) so the player can start and seek before it has the whole
file, and the file appears under its name only when complete (written to a temporary
name, then renamed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import av.error
from av.audio.resampler import AudioResampler
from av.video.reformatter import VideoReformatter

from chronos_pipeline.lib.errors import ConfigurationError, ConflictError, MediaError
from chronos_pipeline.lib.storage import Storage

if TYPE_CHECKING:
    from chronos_pipeline.lib.services import Services

PLAYBACK = "playback.mp4"
BROWSER_VIDEO_CODECS = frozenset({"h264"})
BROWSER_PIXEL_FORMATS = frozenset({"yuv420p", "yuvj420p"})
BROWSER_AUDIO_CODECS = frozenset({"aac", "mp3"})
MAX_HEIGHT = 480
AUDIO_BITRATE = 96_000
AUDIO_RATES = (48000, 44100, 32000, 24000, 22050, 16000)
# The H.264 encoders FFmpeg may carry, best first, with the settings of our web rendition.
H264_ENCODERS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast", "crf": "26"},
    "libopenh264": {"allow_skip_frames": "1"},
}
OPENH264_BITRATE = 600_000
KEYFRAME_EVERY_S = 4
MUXER_OPTIONS = {"movflags": "+faststart"}
MEDIA_TYPES = {"mp4": "video/mp4", "mkv": "video/x-matroska", "avi": "video/x-msvideo"}


@dataclass(frozen=True)
class PlaybackReport:
    """What was made: ``remux`` (streams copied) or ``transcode`` (something re-encoded)."""

    mode: str
    source_video_codec: str | None
    source_audio_codec: str | None
    video_codec: str | None
    audio_codec: str | None
    video_action: str | None  # "copy" | "encode" | None (no picture)
    audio_action: str | None
    bytes: int
    wall_time_s: float

    @property
    def codecs_summary(self) -> str:
        """``video/audio`` codecs of the rendition, ``-`` for a missing stream."""
        return f"{self.video_codec or '-'}/{self.audio_codec or '-'}"

    def metadata(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "source_codecs": f"{self.source_video_codec or '-'}/{self.source_audio_codec or '-'}",
            "codecs": self.codecs_summary,
            "video": self.video_action or "none",
            "audio": self.audio_action or "none",
            "bytes": self.bytes,
            "wall_time_s": round(self.wall_time_s, 2),
        }


def h264_encoder() -> str:
    """The first H.264 encoder this FFmpeg build has."""
    for name in H264_ENCODERS:
        try:
            av.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        return name
    raise ConfigurationError(
        "this FFmpeg build has no H.264 encoder (libx264 or libopenh264); "
        "videos that are not already H.264 cannot be made playable in browsers"
    )


def codec_name(stream: av.VideoStream | av.AudioStream) -> str:
    """The format's name for the stream's codec (``mp3``, not the decoder ``mp3float``)."""
    return str(stream.codec_context.codec.canonical_name)


def browser_plays_video(stream: av.VideoStream) -> bool:
    return (codec_name(stream) in BROWSER_VIDEO_CODECS
            and stream.codec_context.pix_fmt in BROWSER_PIXEL_FORMATS)


def browser_plays_audio(stream: av.AudioStream) -> bool:
    return codec_name(stream) in BROWSER_AUDIO_CODECS


def _picture_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first real video stream (cover art in an audio file is not a video)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def make_playback(source: Path, target: Path) -> PlaybackReport:
    """Write a browser-playable MP4 of ``source`` to ``target`` (which it overwrites)."""
    started = time.perf_counter()
    try:
        with av.open(str(source)) as src:
            video_in = _picture_stream(src)
            audio_in = src.streams.audio[0] if src.streams.audio else None
            if video_in is None and audio_in is None:
                raise MediaError("the file has neither picture nor sound to play")
            copy_video = video_in is not None and browser_plays_video(video_in)
            copy_audio = audio_in is not None and browser_plays_audio(audio_in)
            with av.open(str(target), mode="w", format="mp4", options=MUXER_OPTIONS) as out:
                routes: list[_Route] = []
                if video_in is not None:
                    routes.append(_Route(video_in, out.add_stream_from_template(video_in), True)
                                  if copy_video else _video_encoder(out, video_in))
                if audio_in is not None:
                    routes.append(_Route(audio_in, out.add_stream_from_template(audio_in), True)
                                  if copy_audio else _audio_encoder(out, audio_in))
                _convert(src, out, routes)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"could not make a playable copy of the video: {exc}") from exc
    video_action = None if video_in is None else ("copy" if copy_video else "encode")
    audio_action = None if audio_in is None else ("copy" if copy_audio else "encode")
    encoded = "encode" in (video_action, audio_action)
    return PlaybackReport(
        mode="transcode" if encoded else "remux",
        source_video_codec=codec_name(video_in) if video_in is not None else None,
        source_audio_codec=codec_name(audio_in) if audio_in is not None else None,
        video_codec=None if video_in is None else (
            codec_name(video_in) if copy_video else "h264"),
        audio_codec=None if audio_in is None else (
            codec_name(audio_in) if copy_audio else "aac"),
        video_action=video_action,
        audio_action=audio_action,
        bytes=target.stat().st_size,
        wall_time_s=time.perf_counter() - started,
    )


def web_size(width: int, height: int, max_height: int = MAX_HEIGHT) -> tuple[int, int]:
    """The picture size of the web rendition: at most ``max_height`` lines, even sides."""
    if height > max_height:
        width, height = round(width * max_height / height), max_height
    return max(2, width - width % 2), max(2, height - height % 2)


@dataclass
class _Route:
    """One source stream into the output: its packets copied, or decoded and re-encoded."""

    source: av.VideoStream | av.AudioStream
    target: av.VideoStream | av.AudioStream
    copies: bool
    resampler: AudioResampler | None = None
    # One scaler for the whole stream: frame.reformat() would build one per frame.
    scaler: VideoReformatter = field(default_factory=VideoReformatter)

    def ready(self, frame: av.VideoFrame | av.AudioFrame | None) -> list[Any]:
        """The frames to hand the encoder for one decoded frame (None: the flush)."""
        if isinstance(frame, av.VideoFrame) and isinstance(self.target, av.VideoStream):
            scaled = self.scaler.reformat(frame, width=self.target.width,
                                          height=self.target.height, format="yuv420p")
            scaled.pts, scaled.time_base = frame.pts, frame.time_base
            # The decoder's I/P labels would force x264's frame types: every source
            # keyframe an I-frame and no B-frames, several times the bytes.
            scaled.pict_type = av.video.frame.PictureType.NONE
            return [scaled]
        if self.resampler is not None and not isinstance(frame, av.VideoFrame):
            if frame is not None:
                frame.pts = None  # the resampler re-times the samples it emits
            return list(self.resampler.resample(frame))
        return []


def _video_encoder(out: av.container.OutputContainer, source: av.VideoStream) -> _Route:
    encoder = h264_encoder()
    source.thread_type = "AUTO"  # frame threads too: decoding is half the work
    rate = source.average_rate or source.guessed_rate or Fraction(25)
    stream = out.add_stream(encoder, rate=rate, options=dict(H264_ENCODERS[encoder]))
    assert isinstance(stream, av.VideoStream)
    context = source.codec_context
    stream.width, stream.height = web_size(context.width, context.height)
    stream.pix_fmt = "yuv420p"
    stream.codec_context.gop_size = max(1, round(float(rate) * KEYFRAME_EVERY_S))
    stream.thread_type = "AUTO"  # frame threads, as ffmpeg uses: slices compress worse
    if encoder == "libopenh264":
        stream.bit_rate = OPENH264_BITRATE
    if source.time_base is not None:
        stream.codec_context.time_base = source.time_base
    return _Route(source, stream, copies=False)


def _audio_encoder(out: av.container.OutputContainer, source: av.AudioStream) -> _Route:
    rate = int(source.codec_context.sample_rate or 48000)
    if rate not in AUDIO_RATES:
        rate = 48000
    stream = out.add_stream("aac", rate=rate)
    stream.layout = "mono" if source.codec_context.channels == 1 else "stereo"
    stream.bit_rate = AUDIO_BITRATE
    resampler = AudioResampler(format="fltp", layout=stream.layout, rate=rate)
    return _Route(source, stream, copies=False, resampler=resampler)


def _convert(src: av.container.InputContainer, out: av.container.OutputContainer,
             routes: list[_Route]) -> None:
    """One pass over the source: copied streams' packets go straight to the muxer."""
    by_index = {route.source.index: route for route in routes}
    for packet in src.demux([route.source for route in routes]):
        route = by_index[packet.stream.index]
        if route.copies:
            if packet.size:  # size 0: the demuxer's end-of-stream flush packet
                packet.stream = route.target
                out.mux(packet)
            continue
        for frame in packet.decode():
            if isinstance(frame, av.VideoFrame | av.AudioFrame):
                _encode(out, route, route.ready(frame))
    for route in routes:
        if not route.copies:
            _encode(out, route, [*route.ready(None), None])


def _encode(out: av.container.OutputContainer, route: _Route, frames: list[Any]) -> None:
    for frame in frames:
        for packet in route.target.encode(frame):
            out.mux(packet)


def write_playback(storage: Storage, creator_id: str, video_id: str) -> PlaybackReport:
    """Make the video's ``playback.mp4`` from its stored source."""
    source = storage.require_source(creator_id, video_id)
    # create_folder=False: a lecture deleted meanwhile must not get its folder back.
    with storage.writing(creator_id, video_id, PLAYBACK, create_folder=False) as temporary:
        return make_playback(source, temporary)


def playback_for_video(services: Services, video_id: str) -> PlaybackReport:
    """The pipeline step: make ``playback.mp4`` for a registered video."""
    video = services.catalog.find_video(video_id)
    return write_playback(services.storage, video.creator_id, video_id)


@dataclass(frozen=True)
class MediaFile:
    path: Path
    media_type: str
    size: int


def playable_file(storage: Storage, creator_id: str, video_id: str) -> MediaFile:
    """What the player streams: the playback rendition when made, else the source."""
    path: Path | None = storage.video_dir(creator_id, video_id) / PLAYBACK
    if path is None or not path.is_file():
        path = storage.source_path(creator_id, video_id)
    if path is None:
        raise ConflictError(f"video {video_id} has no uploaded file yet")
    media_type = MEDIA_TYPES.get(path.suffix.lstrip(".").lower(), "application/octet-stream")
    return MediaFile(path, media_type, path.stat().st_size)
