"""Registering a lecture: create the video, stream its bytes in, confirm it.

The HTTP upload and ``chronos ingest`` both go through here, so they make the same checks
and the same storage layout. Bytes stream to a ``.part`` file outside ``videos/`` with the
size cap enforced as they arrive, are probed with PyAV, and only then are renamed into the
video's folder. Confirmation writes ``manifest.json`` last: that file is what the Dagster
sensor sees, so a video is either complete and registered or absent.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from chronos_pipeline.lib.catalog import Catalog, Video, VideoStatus
from chronos_pipeline.lib.errors import ConflictError, PayloadTooLargeError, ValidationError
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.media import MediaFacts, probe
from chronos_pipeline.lib.storage import MANIFEST, Storage

COPY_CHUNK = 1024 * 1024


class UploadWriter:
    """Receives an upload's bytes into a ``.part`` file, enforcing the size cap."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._handle: BinaryIO | None = open(path, "wb")  # noqa: SIM115 - closed in finish/abort

    def write(self, data: bytes) -> None:
        assert self._handle is not None
        self.size += len(data)
        if self.size > self.max_bytes:
            self.abort()
            raise PayloadTooLargeError(
                f"the upload is over the {self.max_bytes:,}-byte limit; "
                "split the lecture or ask for a higher limit"
            )
        self._handle.write(data)
        self._hash.update(data)

    def finish(self) -> tuple[Path, int, str]:
        assert self._handle is not None
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None
        return self.path, self.size, self._hash.hexdigest()

    def abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self.path.unlink(missing_ok=True)


class Ingest:
    def __init__(
        self, *, catalog: Catalog, storage: Storage, ledger: Ledger, max_bytes: int,
        min_duration_s: float = 0.0,
    ) -> None:
        self.catalog = catalog
        self.storage = storage
        self.ledger = ledger
        self.max_bytes = max_bytes
        self.min_duration_s = min_duration_s

    def create(
        self, creator_id: str, title: str, *, course_id: str | None = None,
        filename: str | None = None,
    ) -> Video:
        return self.catalog.create_video(creator_id, title, course_id, filename)

    def open_upload(self, creator_id: str, video_id: str) -> UploadWriter:
        video = self.catalog.get_video(creator_id, video_id)
        if video.status is not VideoStatus.AWAITING_UPLOAD:
            raise ConflictError(f"video {video_id} is already uploaded (status {video.status})")
        return UploadWriter(self.storage.new_upload_path(video_id), self.max_bytes)

    def complete_upload(self, creator_id: str, video_id: str, writer: UploadWriter) -> MediaFacts:
        """Probe the received bytes; keep them only if they are a whole video with sound."""
        path, size, _digest = writer.finish()
        try:
            if size == 0:
                raise ValidationError("the upload is empty")
            facts = probe(path, min_duration_s=self.min_duration_s)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.storage.place_source(path, creator_id, video_id, facts.extension)
        self.catalog.record_upload(video_id, container=facts.container,
                                   duration_s=facts.duration_s, size_bytes=size)
        return facts

    def receive(self, creator_id: str, video_id: str, chunks: Iterable[bytes]) -> MediaFacts:
        writer = self.open_upload(creator_id, video_id)
        try:
            for chunk in chunks:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return self.complete_upload(creator_id, video_id, writer)

    def confirm(self, creator_id: str, video_id: str) -> Video:
        """Write the manifest (the sensor's signal) and mark the video uploaded."""
        video = self.catalog.get_video(creator_id, video_id)
        if video.status is not VideoStatus.AWAITING_UPLOAD:
            raise ConflictError(f"video {video_id} is already confirmed (status {video.status})")
        source = self.storage.source_path(creator_id, video_id)
        if source is None or video.size_bytes is None:
            raise ConflictError(f"video {video_id} has no uploaded file to confirm yet")
        self.ledger.record(
            Usage("local", "local-disk", {"byte_month": float(video.size_bytes)}),
            creator_id=creator_id, stage="upload", video_id=video_id,
        )
        self.storage.write_json(
            creator_id, video_id, MANIFEST,
            {
                "video_id": video_id,
                "creator_id": creator_id,
                "course_id": video.course_id,
                "title": video.title,
                "source": source.name,
                "size_bytes": video.size_bytes,
                "duration_s": video.duration_s,
                "container": video.container,
                "confirmed_at": datetime.now(UTC).isoformat(),
            },
        )
        return self.catalog.set_status(video_id, VideoStatus.UPLOADED)

    def ingest_file(
        self, creator_id: str, path: Path, *, title: str | None = None,
        course_id: str | None = None,
    ) -> Video:
        """Register a local file exactly as an HTTP upload would (create, stream, confirm)."""
        if not path.is_file():
            raise ValidationError(f"no such file: {path}")
        video = self.create(creator_id, title or path.stem, course_id=course_id,
                            filename=path.name)
        try:
            with open(path, "rb") as handle:
                self.receive(creator_id, video.id,
                             iter(lambda: handle.read(COPY_CHUNK), b""))
            return self.confirm(creator_id, video.id)
        except BaseException:
            self.discard(creator_id, video.id)
            raise

    def discard(self, creator_id: str, video_id: str) -> None:
        """Forget a video that never completed its upload."""
        video = self.catalog.get_video(creator_id, video_id)
        if video.status is VideoStatus.AWAITING_UPLOAD:
            self.storage.discard_video(creator_id, video_id)
            self.catalog.delete_video(video_id)
