"""Media for the lecture page: the video itself (with byte ranges) and transcript files."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, HttpMethod, Request, Response, get, route
from litestar.params import Parameter
from litestar.response.streaming import ASGIStreamingResponse

from chronos_api.auth import STUDENTS_OPT
from chronos_api.openapi import MediaOperation, TranscriptFileOperation, documented
from chronos_api.schemas import VideoIdParam
from chronos_pipeline.lib.access import readable_video
from chronos_pipeline.lib.byte_ranges import file_slice, read_slice
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.playback import playable_file
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.transcript_formats import transcript_file

STUDENTS = {STUDENTS_OPT: True}


class MediaController(Controller):
    path = "/videos"
    tags = ["media"]

    @route("/{video_id:str}/media", http_method=[HttpMethod.GET, HttpMethod.HEAD],
           sync_to_thread=True, opt=STUDENTS,
           **documented(404, 409, 416, 422, operation=MediaOperation))
    def media(self, video_id: VideoIdParam, request: Request[Any, Any, Any], principal: Principal,
              services: Services) -> ASGIStreamingResponse:
        """The playable video (playback.mp4, else the upload); honours ``Range: bytes=…``.
        Authorised by the session cookie or the bearer key: there is no public URL."""
        video = readable_video(services.catalog, principal, video_id)
        media = playable_file(services.storage, video.creator_id, video.id)
        part = file_slice(request.headers.get("range"), media.size)
        return ASGIStreamingResponse(
            iterator=read_slice(media.path, part.start, part.length),
            status_code=part.status_code, headers=part.headers, media_type=media.media_type,
            is_head_response=request.method == HttpMethod.HEAD,
        )

    @get("/{video_id:str}/transcript/{fmt:str}", sync_to_thread=True, opt=STUDENTS,
         **documented(404, 409, 422, operation=TranscriptFileOperation))
    def transcript_download(
        self, video_id: VideoIdParam,
        fmt: Annotated[str, Parameter(description="srt, vtt, txt or json (else 404)")],
        principal: Principal, services: Services,
        inline: bool = Parameter(default=False, description="show in the browser (1) "
                                 "instead of downloading, e.g. WebVTT for <track>"),
    ) -> Response[str]:
        """The transcript as srt, vtt (captions), txt ([mm:ss] lines) or json."""
        video = readable_video(services.catalog, principal, video_id)
        found = transcript_file(services.storage, video, fmt, inline=inline)
        # Given as a header: Litestar would append a second charset to a text/* media type.
        return Response(found.text, headers={"content-type": found.media_type,
                                             "content-disposition": found.content_disposition})
