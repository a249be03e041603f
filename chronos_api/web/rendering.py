"""What every page template gets: who is signed in, their CSRF token, and formatters."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar.response import Template

from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.timefmt import timestamp


def usd(amount: Decimal | float | int | None) -> str:
    """Money as a creator reads it: exact to the micro-dollar, never rounded to $0."""
    if amount is None:
        return "—"
    value = Decimal(str(amount))
    if value == 0:
        return "$0"
    if abs(value) >= Decimal("0.01"):
        return f"${value:,.2f}" if abs(value) >= 100 else f"${value:,.4f}".rstrip("0")
    return f"${value:.6f}".rstrip("0") if abs(value) >= Decimal("0.000001") else "<$0.000001"


def page(name: str, principal: Principal | None, **context: Any) -> Template:
    return Template(template_name=name, context={
        "me": principal,
        "csrf": principal.csrf_token if principal is not None else "",
        "is_creator": principal is not None and not principal.is_student,
        **context,
    })


FILTERS = {"usd": usd, "mmss": timestamp}
