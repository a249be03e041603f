"""Deleting for real: a lecture's files, vectors and partial uploads, or a whole creator.

A deleted lecture keeps its catalog row (status ``deleted``) because cost records name
it; nothing else of it stays. A lecture a pipeline step is working on is refused (409):
its step would write its files back. Deleting a creator removes every catalog row of
theirs; the cost ledger is append-only and keeps their records.
"""

from __future__ import annotations

from dataclasses import dataclass

from chronos_pipeline.lib.catalog import PROCESSING, Video, VideoStatus
from chronos_pipeline.lib.errors import ConflictError
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.vectors import delete_everywhere


@dataclass(frozen=True)
class DeletedCreator:
    creator_id: str
    video_ids: list[str]


def delete_lecture(services: Services, creator_id: str, video_id: str) -> Video:
    """Delete one of the creator's lectures; returns its (deleted) row."""
    video = services.catalog.claim_for_deletion(creator_id, video_id)
    services.storage.delete_video_files(creator_id, video_id)
    delete_everywhere(services.settings.lancedb_dir, video_id=video_id)
    return video


def delete_creator(services: Services, creator_id: str) -> DeletedCreator:
    """Delete every lecture of the creator, then every catalog row of theirs.

    Refused before anything is deleted if one of their lectures is being processed.
    """
    services.catalog.get_creator(creator_id)
    videos = services.catalog.list_videos(creator_id, include_unlisted=True)
    busy = [v.id for v in videos if v.status in PROCESSING]
    if busy:
        raise ConflictError(
            f"{len(busy)} lecture(s) of creator {creator_id} are being processed "
            f"({', '.join(busy)}); delete the creator when they are ready or failed"
        )
    for video in videos:
        if video.status is not VideoStatus.DELETED:
            delete_lecture(services, creator_id, video.id)
    services.storage.delete_creator_files(creator_id)
    # Rows of a lecture whose catalog row was already gone would be missed above.
    delete_everywhere(services.settings.lancedb_dir, creator_id=creator_id)
    services.catalog.delete_creator_rows(creator_id)
    return DeletedCreator(creator_id, [v.id for v in videos])
