"""Moving a lecture between courses: the catalog and every vector table agree."""

from __future__ import annotations

from chronos_pipeline.lib.catalog import Video
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.vectors import move_everywhere


def set_lesson_course(services: Services, creator_id: str, video_id: str,
                      course_id: str | None) -> Video:
    """Make a lecture a lesson of ``course_id`` (last in order) or of no course."""
    video = services.catalog.set_video_course(creator_id, video_id, course_id)
    move_everywhere(services.settings.lancedb_dir, video_id, course_id)
    return video
