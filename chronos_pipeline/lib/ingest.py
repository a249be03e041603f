"""Registering a lecture: create the video, stream its bytes in, confirm it.

The HTTP upload and ``chronos ingest`` both go through here, so they make the same checks
and the same storage layout. Bytes stream to the video's ``.part`` file outside ``videos/``
with the size cap enforced as they arrive, are probed with PyAV once all of them are held,
and only then are renamed into the video's folder. An upload may arrive in ranges over
several requests (``Content-Range``); each accepted range pushes the upload's expiry back,
and ``clean_expired`` forgets uploads nobody finished. Confirmation writes
``manifest.json`` last: that file is what the Dagster sensor sees, so a video is either
complete and registered or absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chronos_pipeline.lib.catalog import Catalog, Video, VideoStatus
from chronos_pipeline.lib.errors import (
    ConflictError,
    IncompleteChunkError,
    NotFoundError,
    PayloadTooLargeError,
    UploadOffsetConflict,
    ValidationError,
)
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.media import MediaFacts, probe
from chronos_pipeline.lib.partial_uploads import (
    ContentRange,
    UploadSlot,
    UploadWriter,
    held_bytes,
    read_total,
)
from chronos_pipeline.lib.storage import MANIFEST, Storage

COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UploadState:
    """How much of a video's upload the server holds: a client resumes from here."""

    video_id: str
    received_bytes: int
    total_bytes: int | None
    expires_at: datetime | None
    complete: bool


class Ingest:
    def __init__(
        self, *, catalog: Catalog, storage: Storage, ledger: Ledger, max_bytes: int,
        upload_ttl_s: int = 24 * 3600,
        min_duration_s: float = 0.0,
    ) -> None:
        self.catalog = catalog
        self.storage = storage
        self.ledger = ledger
        self.max_bytes = max_bytes
        self.upload_ttl_s = upload_ttl_s
        self.min_duration_s = min_duration_s

    def create(
        self, creator_id: str, title: str, *, course_id: str | None = None,
        filename: str | None = None,
    ) -> Video:
        return self.catalog.create_video(creator_id, title, course_id, filename,
                                         upload_ttl_s=self.upload_ttl_s)

    def _too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"the upload is over the {self.max_bytes:,}-byte limit; "
            "split the lecture or ask for a higher limit"
        )

    def _slot(self, video_id: str) -> UploadSlot:
        return UploadSlot.acquire(self.storage.upload_path(video_id),
                                  self.storage.upload_lock_path(video_id))

    def open_upload(
        self, creator_id: str, video_id: str, content_range: ContentRange | None = None, *,
        declared_length: int | None = None,
    ) -> UploadWriter:
        """Take the video's upload slot for one request's body (the whole file or a range).

        Everything that can be refused from the headers is refused here, before a byte is
        written: another creator's video, a size over the cap, a range that does not start
        where the held bytes end or declares another TOTAL, a concurrent upload.
        """
        self.catalog.get_video(creator_id, video_id)
        if content_range is None:
            if declared_length is not None and declared_length > self.max_bytes:
                raise self._too_large()
        else:
            if content_range.total > self.max_bytes:
                raise self._too_large()
            if declared_length is not None and declared_length != content_range.length:
                raise ValidationError(
                    f"Content-Length {declared_length:,} does not match the "
                    f"{content_range.length:,} bytes of Content-Range "
                    f"{content_range.start}-{content_range.end}"
                )
        slot = self._slot(video_id)
        try:
            video = self.catalog.get_video(creator_id, video_id)
            if video.status is not VideoStatus.AWAITING_UPLOAD:
                raise ConflictError(
                    f"video {video_id} is already uploaded (status {video.status})"
                )
            if content_range is not None:
                self._check_continues(video, slot, content_range)
            return UploadWriter(slot, content_range, self.max_bytes)
        except BaseException:
            slot.release()
            raise

    @staticmethod
    def _check_continues(video: Video, slot: UploadSlot, content_range: ContentRange) -> None:
        held, total = slot.held_bytes, slot.total
        if held == 0 and video.size_bytes is not None:
            raise UploadOffsetConflict(
                f"video {video.id} is already fully uploaded ({video.size_bytes:,} bytes); "
                "confirm it", offset=video.size_bytes,
            )
        if total is not None and total != content_range.total:
            raise UploadOffsetConflict(
                f"this upload was started as {total:,} bytes, not {content_range.total:,}; "
                "send the rest of the same file", offset=held,
            )
        if content_range.start != held:
            raise UploadOffsetConflict(
                f"the server holds {held:,} bytes of this upload; "
                f"send the range starting at byte {held}", offset=held,
            )
        if total is None:
            slot.set_total(content_range.total)

    def _extend(self, video_id: str) -> None:
        self.catalog.extend_upload(
            video_id, datetime.now(UTC) + timedelta(seconds=self.upload_ttl_s)
        )

    def finish_upload(self, creator_id: str, video_id: str, writer: UploadWriter) -> UploadState:
        """Keep a body that arrived; once every byte is held, probe and place the video."""
        slot = writer.slot
        try:
            writer.close()
            if writer.received:
                self._extend(video_id)
            content_range = writer.content_range
            if content_range is not None:
                if writer.received < content_range.length:
                    raise IncompleteChunkError(
                        f"the body ended after {writer.received:,} of the "
                        f"{content_range.length:,} bytes its Content-Range announced; the "
                        f"server holds {writer.held:,} bytes: resume from there",
                        offset=writer.held,
                    )
                if writer.held < content_range.total:
                    return self.upload_state(creator_id, video_id)
            self._complete(creator_id, video_id, slot)
        finally:
            slot.release()
        return self.upload_state(creator_id, video_id)

    def interrupt_upload(self, video_id: str, writer: UploadWriter) -> None:
        """A body that broke off: keep (fsync'd) the range bytes that came, drop a whole body."""
        try:
            writer.close()
            if writer.content_range is None:
                writer.slot.discard()
            elif writer.received:
                self._extend(video_id)
        finally:
            writer.slot.release()

    def _complete(self, creator_id: str, video_id: str, slot: UploadSlot) -> MediaFacts:
        """Probe the held bytes; keep them only if they are a whole video with sound."""
        size = slot.held_bytes
        try:
            if size == 0:
                raise ValidationError("the upload is empty")
            facts = probe(slot.part, min_duration_s=self.min_duration_s)
        except BaseException:
            slot.discard()
            raise
        self.storage.place_source(slot.part, creator_id, video_id, facts.extension)
        slot.set_total(None)
        self.catalog.record_upload(video_id, container=facts.container,
                                   duration_s=facts.duration_s, size_bytes=size)
        return facts

    def receive(self, creator_id: str, video_id: str, chunks: Iterable[bytes]) -> UploadState:
        """Take a whole file in one go (what ``chronos ingest`` does)."""
        writer = self.open_upload(creator_id, video_id)
        try:
            for chunk in chunks:
                writer.write(chunk)
        except BaseException:
            self.interrupt_upload(video_id, writer)
            raise
        return self.finish_upload(creator_id, video_id, writer)

    def upload_state(self, creator_id: str, video_id: str) -> UploadState:
        """What the server holds of the video's upload (read without waiting for a writer)."""
        video = self.catalog.get_video(creator_id, video_id)
        expires = (video.upload_expires_at
                   if video.status is VideoStatus.AWAITING_UPLOAD else None)
        if video.status is not VideoStatus.AWAITING_UPLOAD or video.size_bytes is not None:
            size = video.size_bytes or 0
            return UploadState(video.id, size, size, expires, complete=True)
        return UploadState(
            video.id, held_bytes(self.storage.upload_path(video.id)),
            read_total(self.storage.upload_lock_path(video.id)), expires, complete=False,
        )

    def confirm(self, creator_id: str, video_id: str) -> Video:
        """Write the manifest (the sensor's signal) and mark the video uploaded."""
        self.catalog.get_video(creator_id, video_id)
        # Under the upload slot: no request can be replacing the source meanwhile.
        with self._slot(video_id) as slot:
            return self._confirm(creator_id, video_id, slot)

    def _confirm(self, creator_id: str, video_id: str, slot: UploadSlot) -> Video:
        video = self.catalog.get_video(creator_id, video_id)
        if video.status is not VideoStatus.AWAITING_UPLOAD:
            raise ConflictError(f"video {video_id} is already confirmed (status {video.status})")
        source = self.storage.source_path(creator_id, video_id)
        if source is None or video.size_bytes is None:
            held = slot.held_bytes
            if held:
                total = slot.total
                of = f" of {total:,}" if total is not None else ""
                raise UploadOffsetConflict(
                    f"the upload of video {video_id} is incomplete: {held:,}{of} bytes "
                    "received; send the rest, then confirm", offset=held,
                )
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

    def retry(self, video_id: str) -> Video:
        """Send a failed lecture through the pipeline again (any creator's: check first).

        The catalog marks it ``uploaded`` with the next attempt number and the manifest is
        rewritten with ``"attempt": n``: a newer manifest is what the upload sensor acts
        on, and the attempt gives the new run its own run key.
        """
        video = self.catalog.find_video(video_id)
        manifest = self.storage.video_dir(video.creator_id, video_id) / MANIFEST
        if video.status is VideoStatus.FAILED and not manifest.is_file():
            raise ConflictError(f"video {video_id} has no confirmed upload to retry")
        retried, attempt = self.catalog.mark_for_retry(video_id)
        try:
            data = self.storage.read_manifest(manifest)
            data["attempt"] = attempt
            data["retried_at"] = datetime.now(UTC).isoformat()
            self.storage.write_json(video.creator_id, video_id, MANIFEST, data,
                                    create_folder=False)
        except BaseException:
            self.catalog.set_status(video_id, VideoStatus.FAILED, video.error_message)
            raise
        return retried

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
            self.storage.discard_upload(video_id)
            self.storage.discard_video(creator_id, video_id)
            self.catalog.delete_video(video_id)

    def clean_expired(self, now: datetime | None = None) -> int:
        """Forget abandoned uploads; returns how many uploads were removed.

        An upload unconfirmed past its expiry loses its bytes (partial or placed) and its
        catalog row with its status events. A file in ``uploads/`` whose video is gone or
        past ``awaiting_upload`` (left by a server killed mid-upload, or by an older one) is
        removed too. An upload a request is writing right now is left for the next round.
        """
        now = now or datetime.now(UTC)
        removed = 0
        for video in self.catalog.expired_uploads(now):
            slot = UploadSlot.try_acquire(self.storage.upload_path(video.id),
                                          self.storage.upload_lock_path(video.id))
            if slot is None:
                continue
            with slot:
                try:
                    current = self.catalog.find_video(video.id)
                except NotFoundError:
                    continue  # another worker's cleaner was first
                expires = current.upload_expires_at
                if (current.status is not VideoStatus.AWAITING_UPLOAD or expires is None
                        or expires >= now):
                    continue  # confirmed or resumed since we looked
                self.storage.discard_upload(video.id)
                self.storage.discard_video(video.creator_id, video.id)
                self.catalog.delete_video(video.id)
                removed += 1
        for video_id in sorted({owner for owner, _ in self.storage.upload_files()}):
            if self._still_uploading(video_id):
                continue
            slot = UploadSlot.try_acquire(self.storage.upload_path(video_id),
                                          self.storage.upload_lock_path(video_id))
            if slot is None:
                continue
            with slot:
                strays = [p for owner, p in self.storage.upload_files()
                          if owner == video_id and p.suffix == ".part"]
                self.storage.discard_upload(video_id)
                removed += len(strays)
        return removed

    def _still_uploading(self, video_id: str) -> bool:
        try:
            return self.catalog.find_video(video_id).status is VideoStatus.AWAITING_UPLOAD
        except NotFoundError:
            return False
