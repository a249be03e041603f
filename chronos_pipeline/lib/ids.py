"""Identifiers: short, prefixed, random, and validated before they go near a query."""

from __future__ import annotations

import re
import secrets

from chronos_pipeline.lib.errors import ValidationError

_PATTERN = re.compile(r"^(cr|co|vd|cs|cm|st|iv)_[0-9a-f]{16}$")
KINDS = {"creator": "cr", "course": "co", "video": "vd", "chat_session": "cs", "message": "cm",
         "student": "st", "invitation": "iv"}


def new_id(kind: str) -> str:
    return f"{KINDS[kind]}_{secrets.token_hex(8)}"


def pattern(kind: str) -> str:
    """The regular expression an id of ``kind`` matches (as the API schema states it)."""
    return f"^{KINDS[kind]}_[0-9a-f]{{16}}$"


def is_valid(value: str, kind: str) -> bool:
    # fullmatch: with match, "$" would also accept an id followed by a newline.
    return bool(_PATTERN.fullmatch(value)) and value.startswith(KINDS[kind] + "_")


def require(value: str, kind: str) -> str:
    """Return ``value`` if it is a well-formed id of ``kind``; else a client error."""
    if not isinstance(value, str) or not is_valid(value, kind):
        raise ValidationError(f"{value!r} is not a valid {kind.replace('_', ' ')} id")
    return value
