"""The lecture page: the player, its transcript beside it, captions and downloads."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.response import Template

from chronos_api.auth import STUDENTS_OPT
from chronos_api.web.rendering import page
from chronos_pipeline.lib.access import readable_video
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import TRANSCRIPT


class LecturePageController(Controller):
    path = "/app/lectures"
    include_in_schema = False

    @get("/{video_id:str}", sync_to_thread=True, opt={STUDENTS_OPT: True})
    def lecture(self, video_id: str, principal: Principal, services: Services,
                t: float | None = None) -> Template:
        """Player (seekable, captioned), the transcript in sync, and its downloads."""
        video = readable_video(services.catalog, principal, video_id)
        path = services.storage.video_dir(video.creator_id, video.id) / TRANSCRIPT
        segments: list[dict[str, Any]] = []
        if path.is_file():
            segments = services.storage.read_json(video.creator_id, video.id,
                                                  TRANSCRIPT)["segments"]
        course = (services.catalog.get_course(principal.creator_id, video.course_id)
                  if video.course_id else None)
        return page("lecture.html", principal, nav="library", video=video, course=course,
                    segments=segments, start=t)
