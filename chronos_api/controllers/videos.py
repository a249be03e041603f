"""Videos: create, stream the bytes in, confirm, and follow their status."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, get, post, put
from litestar.params import Parameter

from chronos_api.auth import STUDENTS_OPT
from chronos_api.schemas import VideoIn, VideoOut
from chronos_pipeline.lib.access import readable_video, readable_videos
from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import ConflictError, PayloadTooLargeError
from chronos_pipeline.lib.ingest import Ingest
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import THUMBNAIL, TRANSCRIPT


async def _stream_into(ingest: Ingest, creator_id: str, video_id: str,
                       request: Request[Any, Any, Any]) -> None:
    """Write the request body to the video's upload file as it arrives, then probe it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > ingest.max_bytes:
        raise PayloadTooLargeError(
            f"the upload is over the {ingest.max_bytes:,}-byte limit; "
            "split the lecture or ask for a higher limit"
        )
    writer = ingest.open_upload(creator_id, video_id)
    try:
        async for chunk in request.stream():
            if chunk:
                writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    await anyio.to_thread.run_sync(ingest.complete_upload, creator_id, video_id, writer)


STUDENTS = {STUDENTS_OPT: True}


class VideoController(Controller):
    path = "/videos"
    tags = ["videos"]

    @post("/", sync_to_thread=True)
    def create_video(self, data: VideoIn, creator: Creator, services: Services) -> VideoOut:
        """Create a video awaiting its bytes (then PUT /videos/{id}/content, then confirm)."""
        video = services.ingest.create(creator.id, data.title, course_id=data.course_id,
                                       filename=data.filename)
        return VideoOut.of(video)

    @put("/{video_id:str}/content", request_max_body_size=None, status_code=200)
    async def upload_content(self, video_id: str, request: Request[Any, Any, Any],
                             creator: Creator, services: Services) -> VideoOut:
        """Stream the video's bytes (raw body). Rejected bytes leave nothing behind."""
        await _stream_into(services.ingest, creator.id, video_id, request)
        return VideoOut.of(services.catalog.get_video(creator.id, video_id))

    @post("/{video_id:str}/confirm", status_code=200, sync_to_thread=True)
    def confirm(self, video_id: str, creator: Creator, services: Services) -> VideoOut:
        """Register the uploaded video: the pipeline picks it up from here."""
        return VideoOut.of(services.ingest.confirm(creator.id, video_id))

    @post("/upload", request_max_body_size=None)
    async def upload(
        self,
        request: Request[Any, Any, Any],
        creator: Creator,
        services: Services,
        title: str,
        course_id: str | None = None,
        filename: str | None = None,
    ) -> VideoOut:
        """Create, stream and confirm in one request (raw body); all or nothing."""
        ingest = services.ingest
        video = await anyio.to_thread.run_sync(
            lambda: ingest.create(creator.id, title, course_id=course_id, filename=filename)
        )
        try:
            await _stream_into(ingest, creator.id, video.id, request)
            confirmed = await anyio.to_thread.run_sync(ingest.confirm, creator.id, video.id)
        except BaseException:
            await anyio.to_thread.run_sync(ingest.discard, creator.id, video.id)
            raise
        return VideoOut.of(confirmed)

    @get("/", sync_to_thread=True, opt=STUDENTS)
    def list_videos(
        self, principal: Principal, services: Services,
        course_id: str | None = Parameter(default=None, required=False),
    ) -> list[VideoOut]:
        """The lectures the caller may open (a student: those of enrolled courses)."""
        return [VideoOut.of(v) for v in readable_videos(services.catalog, principal, course_id)]

    @get("/{video_id:str}", sync_to_thread=True, opt=STUDENTS)
    def get_video(self, video_id: str, principal: Principal, services: Services) -> VideoOut:
        video = readable_video(services.catalog, principal, video_id)
        return VideoOut.of(video, services.catalog.status_history(video_id))

    @get("/{video_id:str}/transcript", sync_to_thread=True, opt=STUDENTS)
    def get_transcript(self, video_id: str, principal: Principal,
                       services: Services) -> dict[str, Any]:
        video = readable_video(services.catalog, principal, video_id)
        if not (services.storage.video_dir(video.creator_id, video.id) / TRANSCRIPT).is_file():
            raise ConflictError(f"video {video_id} has no transcript yet (status {video.status})")
        data: dict[str, Any] = services.storage.read_json(video.creator_id, video.id, TRANSCRIPT)
        return data

    @get("/{video_id:str}/thumbnail", sync_to_thread=True, media_type="image/jpeg",
         opt=STUDENTS)
    def get_thumbnail(self, video_id: str, principal: Principal,
                      services: Services) -> Response[bytes]:
        video = readable_video(services.catalog, principal, video_id)
        path = services.storage.video_dir(video.creator_id, video_id) / THUMBNAIL
        if not path.is_file():
            raise ConflictError(f"video {video_id} has no thumbnail yet")
        return Response(path.read_bytes(), media_type="image/jpeg")
