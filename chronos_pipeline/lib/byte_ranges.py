"""HTTP byte ranges (RFC 9110 §14): which bytes of a file a ``Range`` header asks for.

Browsers seek in a ``<video>`` by asking for ``bytes=a-`` and expect ``206`` with exactly
those bytes. One range is served as asked; a syntactically broken header, another unit or
several ranges are answered with the whole file (``200``), which the RFC allows. A range
that starts past the end is ``416`` with ``Content-Range: bytes */size``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chronos_pipeline.lib.errors import RangeNotSatisfiableError

READ_CHUNK = 256 * 1024
_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive of a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


@dataclass(frozen=True)
class FileSlice:
    """What to send for one request: the status, the bytes and the headers that describe them."""

    status_code: int
    start: int
    length: int
    headers: dict[str, str]


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range ``header`` asks for, or None to send the whole file.

    Raises ``RangeNotSatisfiableError`` when the range lies wholly past the end.
    """
    if header is None:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _RANGE.match(spec)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiableError(size)
    end = size - 1 if last == "" else min(int(last), size - 1)
    return ByteRange(start, end, size)


def file_slice(header: str | None, size: int) -> FileSlice:
    """The response plan for a ``GET`` of a ``size``-byte file with this ``Range`` header."""
    wanted = parse_range(header, size)
    headers = {"accept-ranges": "bytes"}
    if wanted is None:
        headers["content-length"] = str(size)
        return FileSlice(200, 0, size, headers)
    headers["content-length"] = str(wanted.length)
    headers["content-range"] = wanted.content_range
    return FileSlice(206, wanted.start, wanted.length, headers)


def read_slice(path: Path, start: int, length: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
    """Yield ``length`` bytes of ``path`` from ``start`` in chunks (never the whole file)."""
    remaining = length
    with open(path, "rb") as handle:
        handle.seek(start)
        while remaining > 0:
            data = handle.read(min(chunk, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data
