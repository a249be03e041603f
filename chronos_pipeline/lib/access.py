"""What a principal may read: a creator everything of theirs, a student their enrolled courses.

Every read on behalf of a request goes through here, so a student's key or session can
never reach a lecture, transcript or file of a course they are not enrolled in.
"""

from __future__ import annotations

from chronos_pipeline.lib.catalog import Catalog, Course, Video, VideoStatus
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.errors import NotFoundError


def course_scope(catalog: Catalog, principal: Principal) -> list[str] | None:
    """The course ids a principal may read (``None``: every course of the creator)."""
    if principal.student_id is None:
        return None
    return catalog.enrolled_course_ids(principal.student_id)


def readable_courses(catalog: Catalog, principal: Principal) -> list[Course]:
    courses = catalog.list_courses(principal.creator_id)
    scope = course_scope(catalog, principal)
    return courses if scope is None else [c for c in courses if c.id in scope]


def readable_course(catalog: Catalog, principal: Principal, course_id: str) -> Course:
    course = catalog.get_course(principal.creator_id, course_id)
    scope = course_scope(catalog, principal)
    if scope is not None and course.id not in scope:
        raise NotFoundError(f"unknown course {course_id}")
    return course


def readable_video(catalog: Catalog, principal: Principal, video_id: str) -> Video:
    """A lecture the principal may open, or 404 (the same answer as for a missing one)."""
    video = catalog.get_video(principal.creator_id, video_id)
    if video.status is VideoStatus.DELETED:
        raise NotFoundError(f"no video {video_id}")
    scope = course_scope(catalog, principal)
    if scope is not None and (video.course_id not in scope
                              or video.status is VideoStatus.AWAITING_UPLOAD):
        raise NotFoundError(f"no video {video_id}")
    return video


def readable_videos(catalog: Catalog, principal: Principal,
                    course_id: str | None = None) -> list[Video]:
    if course_id is not None:
        readable_course(catalog, principal, course_id)
    scope = course_scope(catalog, principal)
    return catalog.list_videos(principal.creator_id, course_id, course_ids=scope)
