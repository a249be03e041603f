"""Videos: create, stream the bytes in, confirm, and follow their status."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import Parameter

from chronos_api.schemas import VideoIn, VideoOut
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.deletion import delete_lecture
from chronos_pipeline.lib.errors import ConflictError, PayloadTooLargeError
from chronos_pipeline.lib.ingest import Ingest
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import THUMBNAIL, TRANSCRIPT
from chronos_pipeline.operations import forget_partition, retry_video


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

    @get("/", sync_to_thread=True)
    def list_videos(
        self, creator: Creator, services: Services,
        course_id: str | None = Parameter(default=None, required=False),
    ) -> list[VideoOut]:
        if course_id is not None:
            services.catalog.get_course(creator.id, course_id)
        return [VideoOut.of(v) for v in services.catalog.list_videos(creator.id, course_id)]

    @get("/{video_id:str}", sync_to_thread=True)
    def get_video(self, video_id: str, creator: Creator, services: Services) -> VideoOut:
        video = services.catalog.get_video(creator.id, video_id)
        return VideoOut.of(video, services.catalog.status_history(video_id))

    @get("/{video_id:str}/transcript", sync_to_thread=True)
    def get_transcript(self, video_id: str, creator: Creator,
                       services: Services) -> dict[str, Any]:
        video = services.catalog.get_video(creator.id, video_id)
        if not (services.storage.video_dir(creator.id, video.id) / TRANSCRIPT).is_file():
            raise ConflictError(f"video {video_id} has no transcript yet (status {video.status})")
        data: dict[str, Any] = services.storage.read_json(creator.id, video.id, TRANSCRIPT)
        return data

    @get("/{video_id:str}/thumbnail", sync_to_thread=True, media_type="image/jpeg")
    def get_thumbnail(self, video_id: str, creator: Creator,
                      services: Services) -> Response[bytes]:
        services.catalog.get_video(creator.id, video_id)
        path = services.storage.video_dir(creator.id, video_id) / THUMBNAIL
        if not path.is_file():
            raise ConflictError(f"video {video_id} has no thumbnail yet")
        return Response(path.read_bytes(), media_type="image/jpeg")

    @post("/{video_id:str}/retry", status_code=202, sync_to_thread=True)
    def retry(self, video_id: str, creator: Creator, services: Services) -> VideoOut:
        """Run a failed lecture through the pipeline again (409 unless it failed)."""
        services.catalog.get_video(creator.id, video_id)
        instance = open_instance(services.settings)
        try:
            video = retry_video(instance, services, video_id)
        finally:
            instance.dispose()
        return VideoOut.of(video)

    @delete("/{video_id:str}", status_code=204, sync_to_thread=True)
    def delete_video(self, video_id: str, creator: Creator, services: Services) -> None:
        """Delete the lecture's files, transcript and vectors (409 while it is processed);
        its cost records stay."""
        delete_lecture(services, creator.id, video_id)
        instance = open_instance(services.settings)
        try:
            forget_partition(instance, video_id)
        finally:
            instance.dispose()
