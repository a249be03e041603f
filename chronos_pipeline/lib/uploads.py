"""Finding confirmed uploads that the pipeline has not seen yet.

The cursor is a high-water mark over manifest modification times plus the ids seen at
exactly that time, so a manifest is reported once even when several share a timestamp.
A retry rewrites the manifest with ``"attempt": n``: the new modification time makes it
new again, and the attempt gives its run a run key of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chronos_pipeline.lib import ids
from chronos_pipeline.lib.storage import Storage


@dataclass(frozen=True)
class NewUpload:
    video_id: str
    creator_id: str
    mtime_ns: int
    attempt: int = 0

    @property
    def run_key(self) -> str:
        return run_key(self.video_id, self.attempt)


def run_key(video_id: str, attempt: int) -> str:
    """The first run of an upload is keyed by the video id; retry ``n`` by ``id:retry-n``."""
    return video_id if attempt == 0 else f"{video_id}:retry-{attempt}"


def manifest_attempt(storage: Storage, path: Path) -> int:
    try:
        attempt = storage.read_manifest(path).get("attempt", 0)
    except (OSError, ValueError):
        return 0
    return attempt if isinstance(attempt, int) and attempt >= 0 else 0


@dataclass(frozen=True)
class UploadCursor:
    mtime_ns: int = -1
    seen_at_mtime: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> UploadCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(int(data["mtime_ns"]), tuple(data.get("seen", [])))

    def dump(self) -> str:
        return json.dumps({"mtime_ns": self.mtime_ns, "seen": sorted(self.seen_at_mtime)})

    def is_new(self, video_id: str, mtime_ns: int) -> bool:
        return mtime_ns > self.mtime_ns or (
            mtime_ns == self.mtime_ns and video_id not in self.seen_at_mtime
        )


def new_uploads(storage: Storage, cursor: UploadCursor) -> tuple[list[NewUpload], UploadCursor]:
    """Manifests newer than ``cursor`` (oldest first) and the cursor that covers them."""
    found = []
    for path, mtime_ns in storage.manifests():
        video_id = path.parent.name
        creator_id = path.parent.parent.name
        if not (ids.is_valid(video_id, "video") and ids.is_valid(creator_id, "creator")):
            continue
        if cursor.is_new(video_id, mtime_ns):
            found.append(NewUpload(video_id, creator_id, mtime_ns,
                                   manifest_attempt(storage, path)))
    found.sort(key=lambda u: (u.mtime_ns, u.video_id))
    if not found:
        return [], cursor
    top = found[-1].mtime_ns
    at_top = tuple(u.video_id for u in found if u.mtime_ns == top)
    if top == cursor.mtime_ns:
        at_top = tuple(sorted(set(cursor.seen_at_mtime) | set(at_top)))
    return found, UploadCursor(top, at_top)
