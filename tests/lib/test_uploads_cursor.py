"""The upload cursor reports every confirmed manifest exactly once."""

from __future__ import annotations

import os
from pathlib import Path

from chronos_pipeline.lib.storage import MANIFEST, Storage
from chronos_pipeline.lib.uploads import UploadCursor, new_uploads

CREATOR = "cr_00000000000000aa"


def _manifest(storage: Storage, video_id: str, mtime_ns: int) -> None:
    path = storage.write_json(CREATOR, video_id, MANIFEST, {"video_id": video_id})
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_each_manifest_is_new_once_even_when_times_tie(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    _manifest(storage, "vd_0000000000000001", 1_000)
    _manifest(storage, "vd_0000000000000002", 2_000)
    found, cursor = new_uploads(storage, UploadCursor())
    assert [u.video_id for u in found] == ["vd_0000000000000001", "vd_0000000000000002"]

    _manifest(storage, "vd_0000000000000003", 2_000)  # same time as the last one seen
    found, cursor = new_uploads(storage, UploadCursor.parse(cursor.dump()))
    assert [u.video_id for u in found] == ["vd_0000000000000003"]

    found, _ = new_uploads(storage, UploadCursor.parse(cursor.dump()))
    assert found == []


def test_uploads_still_arriving_are_invisible(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    part = storage.upload_path("vd_0000000000000001")
    part.write_bytes(b"partial")
    found, _ = new_uploads(storage, UploadCursor())
    assert found == []
