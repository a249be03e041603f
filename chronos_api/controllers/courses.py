"""Courses: a creator's way of grouping lectures (and scoping chat)."""

from __future__ import annotations

from litestar import Controller, get, post

from chronos_api.auth import STUDENTS_OPT
from chronos_api.openapi import documented
from chronos_api.schemas import CourseIn, CourseOut
from chronos_pipeline.lib.access import readable_courses
from chronos_pipeline.lib.catalog import Creator
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.services import Services


class CourseController(Controller):
    path = "/courses"
    tags = ["courses"]

    @post("/", sync_to_thread=True, **documented(400, 403, 422))
    def create_course(self, data: CourseIn, creator: Creator, services: Services) -> CourseOut:
        """Create a course (its name: 1 to 200 characters)."""
        return CourseOut.of(services.catalog.create_course(creator.id, data.name))

    @get("/", sync_to_thread=True, opt={STUDENTS_OPT: True}, **documented())
    def list_courses(self, principal: Principal, services: Services) -> list[CourseOut]:
        """The caller's courses (a student: the courses they are enrolled in)."""
        return [CourseOut.of(c) for c in readable_courses(services.catalog, principal)]
