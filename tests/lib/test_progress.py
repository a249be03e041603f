"""Stage progress in the catalog: the library shows share done and time left while a
lecture is transcribed and embedded, and nothing stale once it is ready."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.errors import PipelineStateError
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.steps import (
    ProgressWriter,
    chunk_video,
    embed_video,
    probe_video,
    transcribe_video,
)
from tests.conftest import SPEECH_DIR
from tests.media import speech_video


def test_progress_is_written_at_most_every_two_seconds_and_always_at_the_end(
    services: Services, creator: tuple[str, str]
) -> None:
    video = services.catalog.create_video(creator[0], "Lecture")
    now = [100.0]
    writer = ProgressWriter(services, video.id, clock=lambda: now[0])
    seen = []
    for at, done in ((101.0, 10), (101.5, 20), (102.5, 30), (103.0, 40), (104.0, 100)):
        now[0] = at
        writer(done, 100)
        row = services.catalog.find_video(video.id)
        seen.append((row.progress, row.progress_eta_s))

    # 10 % after 1 s: 9 s left. 20 % and 30 % come 0.5 s and 1.5 s after that write: not
    # written. 40 % comes 2 s after it: written (3 s for 40 %, so 4.5 s left). 100 % always.
    assert seen == [(0.1, 9.0), (0.1, 9.0), (0.1, 9.0), (0.4, 4.5), (1.0, 0.0)]


def test_real_transcription_leaves_progress_that_the_next_stage_clears(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    clip = speech_video(SPEECH_DIR / "jfk.wav", tmp_path / "jfk.mp4")
    video = services.ingest.ingest_file(creator[0], clip, title="Ask not")
    probe_video(services, video.id)
    persisted: list[float | None] = []

    def watch(done: float, total: float) -> None:
        persisted.append(services.catalog.find_video(video.id).progress)

    transcribe_video(services, video.id, on_progress=watch)

    assert persisted and persisted[-1] == 1.0
    assert persisted == sorted(p or 0.0 for p in persisted)
    during = services.catalog.find_video(video.id)
    assert (during.status, during.progress, during.progress_eta_s) == (
        VideoStatus.TRANSCRIBING, 1.0, 0.0)

    chunk_video(services, video.id)
    assert services.catalog.find_video(video.id).progress == 1.0
    embed_video(services, video.id)
    ready = services.catalog.find_video(video.id)
    assert ready.status is VideoStatus.READY
    assert (ready.progress, ready.progress_eta_s) == (None, None)


def test_a_failure_clears_progress(services: Services, creator: tuple[str, str]) -> None:
    video = services.catalog.create_video(creator[0], "Lecture")
    services.catalog.set_status(video.id, VideoStatus.TRANSCRIBING)
    services.catalog.set_progress(video.id, 0.5, 30.0)
    failed = services.catalog.set_status(video.id, VideoStatus.FAILED, "provider down")
    assert (failed.progress, failed.progress_eta_s) == (None, None)


@pytest.mark.parametrize("stage", [VideoStatus.TRANSCRIBING, VideoStatus.FAILED])
def test_a_deleted_lecture_is_never_brought_back_by_a_step(
    services: Services, creator: tuple[str, str], stage: VideoStatus
) -> None:
    video = services.catalog.create_video(creator[0], "Lecture")
    services.catalog.claim_for_deletion(creator[0], video.id)
    with pytest.raises(PipelineStateError, match="deleted"):
        services.catalog.set_status(video.id, stage)
    assert services.catalog.find_video(video.id).status is VideoStatus.DELETED
