"""The usage dashboard: every cent as it is spent, filtered, exportable, live."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import msgspec
from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Stream, Template

from chronos_api.web.rendering import page
from chronos_pipeline.lib.budgets import parse_usd
from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.dashboard import (
    Dashboard,
    DashboardFilters,
    build_dashboard,
    export_records,
)
from chronos_pipeline.lib.errors import ValidationError
from chronos_pipeline.lib.services import Services

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


class BudgetForm(msgspec.Struct):
    monthly_usd: str = ""
    hard_limit_usd: str = ""


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name} must be a date like 2026-11-26, got {value!r}") from None


def filters_of(course_id: str, video_id: str, since: str, until: str) -> DashboardFilters:
    return DashboardFilters(course_id=course_id or None, video_id=video_id or None,
                            since=_day(since, "since"), until=_day(until, "until"))


def chart_data(dashboard: Dashboard) -> str:
    """What the charts draw, as JSON for Chart.js (money as strings, exact)."""
    return json.dumps({
        "days": [d.day.isoformat() for d in dashboard.days],
        "stages": {stage: [str(v) for v in values]
                   for stage, values in dashboard.stage_series.items()},
        "models": [{"label": f"{m.provider}/{m.model}", "usd": str(m.cost_usd)}
                   for m in dashboard.by_model],
    })


class UsagePageController(Controller):
    path = "/app/usage"
    include_in_schema = False

    @get("/", sync_to_thread=True)
    def dashboard(self, principal: Principal, services: Services, course_id: str = "",
                  video_id: str = "", since: str = "", until: str = "",
                  partial: bool = False) -> Template:
        """Month to date against the budget, daily cost by stage, models, lectures, students."""
        catalog = services.catalog
        filters = filters_of(course_id, video_id, since, until)
        version = services.ledger.version()  # read first: a record written after it refreshes
        dashboard = build_dashboard(services.ledger, catalog, principal.creator_id, filters)
        names = catalog.student_names(principal.creator_id,
                                      [s.student_id for s in dashboard.top_students])
        query = {"course_id": course_id, "video_id": video_id,
                 "since": dashboard.filters.since.isoformat() if dashboard.filters.since else "",
                 "until": dashboard.filters.until.isoformat() if dashboard.filters.until else ""}
        return page(
            "usage_partial.html" if partial else "usage.html", principal, nav="usage",
            d=dashboard, names=names, ledger_version=version,
            chart_json=chart_data(dashboard), query=query,
            courses=catalog.list_courses(principal.creator_id),
            lectures=catalog.list_videos(principal.creator_id, include_unlisted=False),
            export_query="&".join(f"{k}={v}" for k, v in query.items() if v),
        )

    @get("/export/{fmt:str}", sync_to_thread=True)
    def export(self, fmt: str, principal: Principal, services: Services, course_id: str = "",
               video_id: str = "", since: str = "", until: str = "") -> Stream:
        """The filtered cost records, every column, as CSV or Parquet."""
        if fmt not in EXPORT_TYPES:
            raise ValidationError(f"export as csv or parquet, not {fmt!r}")
        filters = filters_of(course_id, video_id, since, until)
        chunks: Iterator[bytes] = export_records(
            services.ledger, services.catalog, principal.creator_id, filters,
            "csv" if fmt == "csv" else "parquet")
        return Stream(chunks, media_type=EXPORT_TYPES[fmt], headers={
            "Content-Disposition": f'attachment; filename="chronos-costs.{fmt}"'})

    @post("/budget", sync_to_thread=True)
    def set_budget(self, principal: Principal, services: Services,
                   data: BudgetForm = Body(media_type=RequestEncodingType.URL_ENCODED)  # noqa: B008
                   ) -> Redirect:
        monthly = parse_usd(data.monthly_usd, "monthly budget")
        hard: Decimal | None = (parse_usd(data.hard_limit_usd, "hard limit")
                                if data.hard_limit_usd.strip() else None)
        services.catalog.set_budget(principal.creator_id, monthly, hard)
        services.budgets.record_alerts(principal.creator_id)
        return Redirect("/app/usage", status_code=303)


