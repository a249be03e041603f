"""Videos: create, stream the bytes in, confirm, and follow their status."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, delete, get, head, post, put

from chronos_api.auth import STUDENTS_OPT
from chronos_api.openapi import RawUploadOperation, documented, no_content
from chronos_api.schemas import (
    TranscriptOut,
    UploadOut,
    VideoIdParam,
    VideoIn,
    VideoOut,
    optional_id_param,
    optional_text_param,
    text_param,
)
from chronos_pipeline.lib.access import readable_video, readable_videos
from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.catalog_models import FILENAME_CHARS, TITLE_CHARS
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import ConflictError, ValidationError
from chronos_pipeline.lib.ingest import Ingest, UploadState
from chronos_pipeline.lib.partial_uploads import ContentRange
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import THUMBNAIL, TRANSCRIPT
from chronos_pipeline.lib.transcripts import Transcript
from chronos_pipeline.operations import delete_lecture_everywhere, retry_lecture

# Bytes are handed to a worker thread in pieces this big: a server killed mid-upload loses
# at most this much of what the client sent, and the client resumes from the server's offset.
WRITE_PIECE = 256 * 1024


def _declared_length(request: Request[Any, Any, Any]) -> int | None:
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


async def _stream_into(ingest: Ingest, creator_id: str, video_id: str,
                       request: Request[Any, Any, Any]) -> UploadState:
    """Write the request body (the whole file, or the range its Content-Range names) to the
    video's partial upload as it arrives; once every byte is held, probe it."""
    header = request.headers.get("content-range")
    content_range = ContentRange.parse(header) if header is not None else None
    writer = await anyio.to_thread.run_sync(
        lambda: ingest.open_upload(creator_id, video_id, content_range,
                                   declared_length=_declared_length(request))
    )
    try:
        piece = bytearray()
        async for chunk in request.stream():
            piece += chunk
            if len(piece) >= WRITE_PIECE:
                await anyio.to_thread.run_sync(writer.write, bytes(piece))
                piece.clear()
        if piece:
            await anyio.to_thread.run_sync(writer.write, bytes(piece))
    except BaseException:
        # Even when the request is being cancelled, keep (and fsync) what arrived.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(ingest.interrupt_upload, video_id, writer)
        raise
    return await anyio.to_thread.run_sync(ingest.finish_upload, creator_id, video_id, writer)


def _offset_headers(state: UploadState) -> dict[str, str]:
    headers = {"Upload-Offset": str(state.received_bytes), "Cache-Control": "no-store"}
    if state.total_bytes is not None:
        headers["Upload-Length"] = str(state.total_bytes)
    return headers


STUDENTS = {STUDENTS_OPT: True}
# What taking in bytes can be refused for: the video is another's or gone (404), another
# request is writing it or the range does not continue the held bytes (409, with the
# offset), over the cap (413), not a video with sound (415), empty, cut short or malformed
# (422, with the offset when bytes were kept).
UPLOADING = documented(403, 404, 409, 413, 415, 422, operation=RawUploadOperation)


class VideoController(Controller):
    path = "/videos"
    tags = ["videos"]

    @post("/", sync_to_thread=True, **documented(400, 403, 404, 422))
    def create_video(self, data: VideoIn, creator: Creator, services: Services) -> VideoOut:
        """Create a video awaiting its bytes (then PUT /videos/{id}/content, then confirm)."""
        video = services.ingest.create(creator.id, data.title, course_id=data.course_id,
                                       filename=data.filename)
        return VideoOut.of(video)

    @put("/{video_id:str}/content", request_max_body_size=None, status_code=200,
         **UPLOADING)
    async def upload_content(self, video_id: VideoIdParam, request: Request[Any, Any, Any],
                             creator: Creator, services: Services) -> Response[VideoOut]:
        """Stream the video's bytes (raw body), whole or as `Content-Range: bytes S-E/TOTAL`.

        A range must start at the server's offset (else 409 with `Upload-Offset`); a body
        cut short keeps the bytes that came (422 with `Upload-Offset`). The upload is probed
        once every byte is held. A rejected video leaves nothing behind.
        """
        state = await _stream_into(services.ingest, creator.id, video_id, request)
        video = await anyio.to_thread.run_sync(services.catalog.get_video, creator.id, video_id)
        return Response(VideoOut.of(video), headers=_offset_headers(state))

    @head("/{video_id:str}/content", sync_to_thread=True, **documented(403, 404, 422, others={
        200: no_content("`Upload-Offset`: the bytes held; `Upload-Length`: the declared total")}))
    def upload_offset(self, video_id: VideoIdParam, creator: Creator,
                      services: Services) -> Response[None]:
        """How many bytes of the upload the server holds (`Upload-Offset`): resume there."""
        state = services.ingest.upload_state(creator.id, video_id)
        return Response(None, headers=_offset_headers(state))

    @get("/{video_id:str}/upload", sync_to_thread=True, **documented(403, 404, 422))
    def upload_status(self, video_id: VideoIdParam, creator: Creator,
                      services: Services) -> Response[UploadOut]:
        """The upload's progress: bytes held, declared total, expiry, and whether complete."""
        state = services.ingest.upload_state(creator.id, video_id)
        return Response(UploadOut.of(state), headers=_offset_headers(state))

    @post("/{video_id:str}/confirm", status_code=200, sync_to_thread=True,
          **documented(403, 404, 409, 422))
    def confirm(self, video_id: VideoIdParam, creator: Creator, services: Services) -> VideoOut:
        """Register the uploaded video: the pipeline picks it up from here."""
        return VideoOut.of(services.ingest.confirm(creator.id, video_id))

    @post("/upload", request_max_body_size=None, **UPLOADING)
    async def upload(
        self,
        request: Request[Any, Any, Any],
        creator: Creator,
        services: Services,
        title: str = text_param(TITLE_CHARS, "the lecture's title"),
        course_id: str | None = optional_id_param("course"),
        filename: str | None = optional_text_param(FILENAME_CHARS, "the file's name"),
    ) -> VideoOut:
        """Create, stream and confirm in one request (raw body); all or nothing."""
        ingest = services.ingest
        video = await anyio.to_thread.run_sync(
            lambda: ingest.create(creator.id, title, course_id=course_id, filename=filename)
        )
        try:
            if "content-range" in request.headers:
                raise ValidationError("POST /videos/upload takes the whole file; send ranges "
                                      "with PUT /videos/{id}/content")
            await _stream_into(ingest, creator.id, video.id, request)
            confirmed = await anyio.to_thread.run_sync(ingest.confirm, creator.id, video.id)
        except BaseException:
            await anyio.to_thread.run_sync(ingest.discard, creator.id, video.id)
            raise
        return VideoOut.of(confirmed)

    @get("/", sync_to_thread=True, opt=STUDENTS, **documented(404, 422))
    def list_videos(
        self, principal: Principal, services: Services,
        course_id: str | None = optional_id_param("course"),
    ) -> list[VideoOut]:
        """The lectures the caller may open (a student: those of enrolled courses)."""
        return [VideoOut.of(v) for v in readable_videos(services.catalog, principal, course_id)]

    @get("/{video_id:str}", sync_to_thread=True, opt=STUDENTS, **documented(404, 422))
    def get_video(self, video_id: VideoIdParam, principal: Principal,
                  services: Services) -> VideoOut:
        """The video, its processing status and the history of its statuses."""
        video = readable_video(services.catalog, principal, video_id)
        return VideoOut.of(video, services.catalog.status_history(video_id))

    @get("/{video_id:str}/transcript", sync_to_thread=True, opt=STUDENTS,
         **documented(404, 409, 422))
    def get_transcript(self, video_id: VideoIdParam, principal: Principal,
                       services: Services) -> TranscriptOut:
        """Segments with word times (409 until the video is transcribed)."""
        video = readable_video(services.catalog, principal, video_id)
        if not (services.storage.video_dir(video.creator_id, video.id) / TRANSCRIPT).is_file():
            raise ConflictError(f"video {video_id} has no transcript yet (status {video.status})")
        stored = services.storage.read_json(video.creator_id, video.id, TRANSCRIPT)
        return TranscriptOut.of(Transcript.from_json(stored), video.id)

    @get("/{video_id:str}/thumbnail", sync_to_thread=True, media_type="image/jpeg",
         opt=STUDENTS, **documented(404, 409, 422))
    def get_thumbnail(self, video_id: VideoIdParam, principal: Principal,
                      services: Services) -> Response[bytes]:
        video = readable_video(services.catalog, principal, video_id)
        path = services.storage.video_dir(video.creator_id, video_id) / THUMBNAIL
        if not path.is_file():
            raise ConflictError(f"video {video_id} has no thumbnail yet")
        return Response(path.read_bytes(), media_type="image/jpeg")

    @post("/{video_id:str}/retry", status_code=202, sync_to_thread=True,
          **documented(403, 404, 409, 422))
    def retry(self, video_id: VideoIdParam, creator: Creator, services: Services) -> VideoOut:
        """Run a failed lecture through the pipeline again (409 unless it failed)."""
        return VideoOut.of(retry_lecture(services, creator.id, video_id))

    @delete("/{video_id:str}", status_code=204, sync_to_thread=True,
            **documented(403, 404, 409, 422))
    def delete_video(self, video_id: VideoIdParam, creator: Creator, services: Services) -> None:
        """Delete the lecture's files, transcript and vectors (409 while it is processed);
        its cost records stay."""
        delete_lecture_everywhere(services, creator.id, video_id)
