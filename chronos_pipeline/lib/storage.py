"""Where a video's files live, and how they are written so that nothing half-done shows.

Layout under the data directory::

    storage/videos/<creator_id>/<video_id>/source.<ext>     the uploaded bytes
                                          /manifest.json    written last, on confirm
                                          /thumbnail.jpg    the video asset
                                          /transcript.json  the transcript asset
                                          /chunks.json      the chunks asset
                                          /playback.mp4     the playback asset (browser rendition)
    storage/uploads/<video_id>.part                         bytes still arriving (kept
                                                            between requests: resumable)
    storage/uploads/<video_id>.lock                         held while a request writes

Every file is written to a temporary name and renamed into place, so a reader (the
sensor, the API) sees either the whole file or none. A ``.part`` upload is never visible
under ``videos/``. Object storage would replace this class, not its callers.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chronos_pipeline.lib import ids
from chronos_pipeline.lib.errors import PipelineStateError

MANIFEST = "manifest.json"


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.videos_root = root / "videos"
        self.uploads_root = root / "uploads"

    def video_dir(self, creator_id: str, video_id: str) -> Path:
        ids.require(creator_id, "creator")
        ids.require(video_id, "video")
        return self.videos_root / creator_id / video_id

    def upload_path(self, video_id: str) -> Path:
        """The video's partial upload: one stable path, so a later request can resume it."""
        self.uploads_root.mkdir(parents=True, exist_ok=True)
        return self.uploads_root / f"{ids.require(video_id, 'video')}.part"

    def upload_lock_path(self, video_id: str) -> Path:
        self.uploads_root.mkdir(parents=True, exist_ok=True)
        return self.uploads_root / f"{ids.require(video_id, 'video')}.lock"

    def upload_files(self) -> Iterator[tuple[str, Path]]:
        """Every file under ``uploads/`` named after a video, with that video's id.

        Older servers named partial uploads ``<video_id>.<token>.part``; those count too.
        """
        if not self.uploads_root.is_dir():
            return
        for path in sorted(self.uploads_root.iterdir()):
            video_id = path.name.split(".", 1)[0]
            if path.is_file() and ids.is_valid(video_id, "video"):
                yield video_id, path

    def discard_upload(self, video_id: str) -> None:
        """Remove every file under ``uploads/`` that belongs to the video."""
        ids.require(video_id, "video")
        for owner, path in list(self.upload_files()):
            if owner == video_id:
                path.unlink(missing_ok=True)

    def source_path(self, creator_id: str, video_id: str) -> Path | None:
        directory = self.video_dir(creator_id, video_id)
        if not directory.is_dir():
            return None
        for candidate in sorted(directory.glob("source.*")):
            return candidate
        return None

    def require_source(self, creator_id: str, video_id: str) -> Path:
        path = self.source_path(creator_id, video_id)
        if path is None:
            raise PipelineStateError(f"video {video_id} has no uploaded source file")
        return path

    def place_source(self, upload: Path, creator_id: str, video_id: str, extension: str) -> Path:
        directory = self.video_dir(creator_id, video_id)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("source.*"):
            stale.unlink()
        target = directory / f"source.{extension}"
        os.replace(upload, target)
        return target

    def write_json(self, creator_id: str, video_id: str, name: str, data: Any, *,
                   create_folder: bool = True) -> Path:
        return self.write_bytes(
            creator_id, video_id, name, json.dumps(data, ensure_ascii=False, indent=1).encode(),
            create_folder=create_folder,
        )

    def write_bytes(self, creator_id: str, video_id: str, name: str, data: bytes, *,
                    create_folder: bool = True) -> Path:
        """Write one file of the video whole; ``create_folder=False``: only into an existing
        folder (a pipeline step must not bring back the folder of a deleted lecture)."""
        directory = self.video_dir(creator_id, video_id)
        if not create_folder and not directory.is_dir():
            raise PipelineStateError(f"video {video_id} has no folder (was it deleted?)")
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / name
        temporary = directory / f".{name}.{secrets.token_hex(4)}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return target

    def read_json(self, creator_id: str, video_id: str, name: str) -> Any:
        path = self.video_dir(creator_id, video_id) / name
        if not path.is_file():
            raise PipelineStateError(
                f"{name} is missing for video {video_id}; materialize the upstream asset first"
            )
        return json.loads(path.read_text())

    @contextlib.contextmanager
    def writing(self, creator_id: str, video_id: str, name: str, *,
                create_folder: bool = True) -> Iterator[Path]:
        """A temporary path to write the video's file ``name`` at, for writers that stream
        (a muxer); renamed into place after an fsync if the block succeeds, removed if it
        fails. ``create_folder=False``: only into the video's existing folder."""
        directory = self.video_dir(creator_id, video_id)
        if not create_folder and not directory.is_dir():
            raise PipelineStateError(f"video {video_id} has no folder (was it deleted?)")
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            yield temporary
            with open(temporary, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, directory / name)
        finally:
            temporary.unlink(missing_ok=True)

    def manifests(self) -> Iterator[tuple[Path, int]]:
        """Every confirmed video's manifest with its modification time (ns)."""
        if not self.videos_root.is_dir():
            return
        for path in self.videos_root.glob(f"cr_*/vd_*/{MANIFEST}"):
            try:
                yield path, path.stat().st_mtime_ns
            except FileNotFoundError:
                continue

    def read_manifest(self, path: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def delete_video_files(self, creator_id: str, video_id: str) -> None:
        """The video's whole folder and any upload of it still arriving."""
        shutil.rmtree(self.video_dir(creator_id, video_id), ignore_errors=True)
        self.discard_upload(video_id)

    def delete_creator_files(self, creator_id: str) -> None:
        shutil.rmtree(self.videos_root / ids.require(creator_id, "creator"), ignore_errors=True)

    def discard_video(self, creator_id: str, video_id: str) -> None:
        directory = self.video_dir(creator_id, video_id)
        if directory.is_dir():
            for child in directory.iterdir():
                child.unlink()
            directory.rmdir()
