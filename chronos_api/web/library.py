"""The library and the course builder: courses, ordered lessons, uploads, students."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from chronos_api.auth import STUDENTS_OPT
from chronos_api.web.rendering import page
from chronos_pipeline.lib.access import readable_course, readable_courses, readable_videos
from chronos_pipeline.lib.budgets import parse_usd
from chronos_pipeline.lib.catalog import Course
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.lessons import set_lesson_course
from chronos_pipeline.lib.services import Services
from chronos_pipeline.operations import delete_lecture_everywhere, retry_lecture

STUDENTS = {STUDENTS_OPT: True}


class NameForm(msgspec.Struct):
    name: str = ""


class TitleForm(msgspec.Struct):
    title: str = ""


class MoveForm(msgspec.Struct):
    position: int = 0


class InvitationForm(msgspec.Struct):
    max_uses: int = 30
    days: int = 14


class CapForm(msgspec.Struct):
    monthly_cap_usd: str = ""


FORM_BODY = Body(media_type=RequestEncodingType.URL_ENCODED)


def _course_view(services: Services, principal: Principal, course: Course) -> dict[str, Any]:
    return {"course": course,
            "lectures": readable_videos(services.catalog, principal, course.id)}


def _course_page(services: Services, principal: Principal, course_id: str,
                 new_invite: str = "") -> Template:
    catalog = services.catalog
    course = readable_course(catalog, principal, course_id)
    context: dict[str, Any] = _course_view(services, principal, course)
    if not principal.is_student:
        context["invitations"] = catalog.list_invitations(principal.creator_id, course.id)
        context["students"] = catalog.list_students(principal.creator_id, course.id)
        context["new_invite"] = new_invite
        context["max_upload_bytes"] = services.settings.upload_max_bytes
        context["chunk_bytes"] = services.settings.upload_chunk_bytes
    return page("course.html", principal, nav="library", **context)


class LibraryController(Controller):
    path = "/app"
    include_in_schema = False

    @get("/", sync_to_thread=True, opt=STUDENTS)
    def library(self, principal: Principal, services: Services) -> Template:
        """Every course the caller can open, with its lectures and their live status."""
        catalog = services.catalog
        courses = [_course_view(services, principal, c)
                   for c in readable_courses(catalog, principal)]
        loose = ([v for v in catalog.list_videos(principal.creator_id) if v.course_id is None]
                 if not principal.is_student else [])
        return page("library.html", principal, nav="library", courses=courses, loose=loose)

    @post("/courses", sync_to_thread=True)
    def create_course(self, principal: Principal, services: Services,
                      data: NameForm = FORM_BODY) -> Redirect:
        course = services.catalog.create_course(principal.creator_id, data.name)
        return Redirect(f"/app/courses/{course.id}", status_code=303)

    @get("/courses/{course_id:str}", sync_to_thread=True, opt=STUDENTS)
    def course(self, course_id: str, principal: Principal, services: Services) -> Template:
        """A course: its lessons in order (the builder, for its creator)."""
        return _course_page(services, principal, course_id)

    @post("/courses/{course_id:str}/rename", sync_to_thread=True)
    def rename_course(self, course_id: str, principal: Principal, services: Services,
                      data: NameForm = FORM_BODY) -> Redirect:
        services.catalog.rename_course(principal.creator_id, course_id, data.name)
        return Redirect(f"/app/courses/{course_id}", status_code=303)

    @post("/lessons/{video_id:str}/move", sync_to_thread=True)
    def move_lesson(self, video_id: str, principal: Principal, services: Services,
                    data: MoveForm = FORM_BODY) -> Redirect:
        lessons = services.catalog.move_lesson(principal.creator_id, video_id, data.position)
        return Redirect(f"/app/courses/{lessons[0].course_id}#lessons", status_code=303)

    @post("/lessons/{video_id:str}/rename", sync_to_thread=True)
    def rename_lesson(self, video_id: str, principal: Principal, services: Services,
                      data: TitleForm = FORM_BODY) -> Redirect:
        video = services.catalog.rename_video(principal.creator_id, video_id, data.title)
        return Redirect(f"/app/courses/{video.course_id}#lessons" if video.course_id
                        else "/app", status_code=303)

    @post("/lessons/{video_id:str}/remove", sync_to_thread=True)
    def remove_lesson(self, video_id: str, principal: Principal,
                      services: Services) -> Redirect:
        """Take a lesson out of its course (the lecture stays in the library)."""
        before = services.catalog.get_video(principal.creator_id, video_id)
        set_lesson_course(services, principal.creator_id, video_id, None)
        return Redirect(f"/app/courses/{before.course_id}#lessons" if before.course_id
                        else "/app", status_code=303)

    @post("/lectures/{video_id:str}/retry", sync_to_thread=True)
    def retry(self, video_id: str, principal: Principal, services: Services) -> Redirect:
        """A new Dagster run for a failed lecture (it shows in the Dagster UI as usual)."""
        video = retry_lecture(services, principal.creator_id, video_id)
        return Redirect(f"/app/courses/{video.course_id}#lessons" if video.course_id
                        else "/app", status_code=303)

    @post("/lectures/{video_id:str}/delete", sync_to_thread=True)
    def delete_lecture(self, video_id: str, principal: Principal,
                       services: Services) -> Redirect:
        video = delete_lecture_everywhere(services, principal.creator_id, video_id)
        return Redirect(f"/app/courses/{video.course_id}#lessons" if video.course_id
                        else "/app", status_code=303)

    @post("/courses/{course_id:str}/invitations", sync_to_thread=True)
    def invite(self, course_id: str, principal: Principal, services: Services,
               data: InvitationForm = FORM_BODY) -> Template:
        _invitation, token = services.catalog.create_invitation(
            principal.creator_id, course_id, max_uses=data.max_uses,
            ttl=timedelta(days=data.days))
        return _course_page(services, principal, course_id, new_invite=f"/invite/{token}")

    @post("/invitations/{invitation_id:str}/revoke", sync_to_thread=True)
    def revoke(self, invitation_id: str, principal: Principal,
               services: Services) -> Redirect:
        invitation = services.catalog.revoke_invitation(principal.creator_id, invitation_id)
        return Redirect(f"/app/courses/{invitation.course_id}#students", status_code=303)

    @post("/students/{student_id:str}/cap", sync_to_thread=True)
    def cap(self, student_id: str, principal: Principal, services: Services,
            data: CapForm = FORM_BODY, course_id: str = "") -> Redirect:
        raw = data.monthly_cap_usd.strip()
        cap: Decimal | None = parse_usd(raw, "monthly cap") if raw else None
        services.catalog.set_student_cap(principal.creator_id, student_id, cap)
        return Redirect(f"/app/courses/{course_id}#students" if course_id else "/app",
                        status_code=303)

    @post("/students/{student_id:str}/delete", sync_to_thread=True)
    def delete_student(self, student_id: str, principal: Principal, services: Services,
                       course_id: str = "") -> Redirect:
        services.catalog.delete_student(principal.creator_id, student_id)
        return Redirect(f"/app/courses/{course_id}#students" if course_id else "/app",
                        status_code=303)

