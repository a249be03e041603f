"""One video's upload while its bytes arrive: where they go, who writes, how much is held.

A partial upload lives at ``uploads/<video_id>.part`` between requests, so a client whose
connection dropped resumes it with ``Content-Range: bytes START-END/TOTAL`` instead of
starting over. Beside it, ``uploads/<video_id>.lock`` is held with ``flock`` by the one
request writing and records the TOTAL the client declared. ``flock`` locks belong to an
open file, so two threads of one worker exclude each other just as two workers do; the
kernel drops the lock of a killed process. The lock file is removed, under the lock, once
no bytes are held; an acquirer that locked a file no longer at that path tries again.
"""

from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from chronos_pipeline.lib.errors import ConflictError, PayloadTooLargeError, ValidationError

_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class ContentRange:
    """``bytes START-END/TOTAL``: this body is bytes START..END (inclusive) of TOTAL."""

    start: int
    end: int
    total: int

    @classmethod
    def parse(cls, header: str) -> ContentRange:
        match = _RANGE.fullmatch(header.strip())
        if match is None:
            raise ValidationError(
                f"Content-Range must read 'bytes START-END/TOTAL', got {header!r}"
            )
        start, end, total = (int(g) for g in match.groups())
        if not start <= end < total:
            raise ValidationError(
                f"Content-Range {header!r} is impossible: need START <= END < TOTAL"
            )
        return cls(start, end, total)

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def _parse_total(raw: bytes) -> int | None:
    text = raw.decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() else None


def read_total(lock: Path) -> int | None:
    """The declared TOTAL of a partial upload, read without taking its lock."""
    try:
        return _parse_total(lock.read_bytes()[:32])
    except FileNotFoundError:
        return None


def held_bytes(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


class UploadSlot:
    """The exclusive right to write one video's partial upload (a context manager)."""

    def __init__(self, part: Path, lock: Path, fd: int) -> None:
        self.part = part
        self.lock = lock
        self._fd = fd

    @classmethod
    def try_acquire(cls, part: Path, lock: Path) -> UploadSlot | None:
        """The slot, or None while another request (in any process) holds it."""
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return cls(part, lock, fd)
            os.close(fd)  # the last holder removed this lock file as we opened it

    @classmethod
    def acquire(cls, part: Path, lock: Path) -> UploadSlot:
        slot = cls.try_acquire(part, lock)
        if slot is None:
            raise ConflictError(
                "another request is uploading to this video right now; wait for it to end, "
                "then ask GET /videos/{id}/upload where to resume"
            )
        return slot

    @property
    def held_bytes(self) -> int:
        return held_bytes(self.part)

    @property
    def total(self) -> int | None:
        return _parse_total(os.pread(self._fd, 32, 0))

    def set_total(self, total: int | None) -> None:
        os.ftruncate(self._fd, 0)
        if total is not None:
            os.pwrite(self._fd, str(total).encode(), 0)
        os.fsync(self._fd)

    def discard(self) -> None:
        """Drop the held bytes and the declared size."""
        self.part.unlink(missing_ok=True)
        self.set_total(None)

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            if self.held_bytes == 0:
                self.part.unlink(missing_ok=True)
                self.lock.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = -1

    def __enter__(self) -> UploadSlot:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class UploadWriter:
    """Writes one request's body into the held slot's ``.part`` file.

    Without a range the body replaces whatever was held and is cut off at the size cap; with
    one it is appended at START (which the caller checked equals the held bytes) and stops
    at END.
    """

    def __init__(self, slot: UploadSlot, content_range: ContentRange | None,
                 max_bytes: int) -> None:
        self.slot = slot
        self.content_range = content_range
        self.max_bytes = max_bytes
        self.start = 0 if content_range is None else content_range.start
        self.received = 0
        fd = os.open(slot.part, os.O_WRONLY | os.O_CREAT, 0o644)
        os.ftruncate(fd, self.start)
        os.lseek(fd, self.start, os.SEEK_SET)
        self._handle: BinaryIO | None = os.fdopen(fd, "wb")
        if content_range is None:
            slot.set_total(None)

    def write(self, data: bytes) -> None:
        assert self._handle is not None
        if self.content_range is not None:
            room = self.content_range.length - self.received
            if len(data) > room:
                self._handle.write(data[:room])
                self.received += room
                raise ValidationError(
                    f"the body is longer than its Content-Range "
                    f"({self.content_range.length:,} bytes); the bytes in range are kept"
                )
        elif self.received + len(data) > self.max_bytes:
            raise PayloadTooLargeError(
                f"the upload is over the {self.max_bytes:,}-byte limit; "
                "split the lecture or ask for a higher limit"
            )
        self._handle.write(data)
        self.received += len(data)

    @property
    def held(self) -> int:
        return self.start + self.received

    def close(self) -> None:
        """Flush and fsync what arrived, so an answer never claims bytes a crash could lose."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            handle.close()
