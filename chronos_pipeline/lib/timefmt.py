"""Formatting seconds the way a student reads a video player."""

from __future__ import annotations


def timestamp(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` past the hour."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def seconds_of(stamp: str) -> float:
    """The seconds a ``mm:ss`` or ``h:mm:ss`` timestamp names."""
    total = 0
    for part in stamp.split(":"):
        total = total * 60 + int(part)
    return float(total)
