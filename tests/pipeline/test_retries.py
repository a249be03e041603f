"""Transient provider errors are retried under the RetryPolicy; each call is still billed."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from chronos_pipeline.definitions import defs
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.errors import ProviderUnavailable
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import ProgressCallback, Transcriber, UsageCallback
from chronos_pipeline.lib.providers.local_whisper import LocalWhisperTranscriber
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.transcripts import Transcript
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.resources.providers import TranscriberResource
from chronos_pipeline.runner import resources_config
from tests.conftest import SPEECH_DIR
from tests.media import speech_video


class FlakyTranscriber(LocalWhisperTranscriber):
    """The real local transcriber behind a provider that is rate limited at first."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def transcribe(
        self, media: Path, *, on_progress: ProgressCallback | None = None,
        on_usage: UsageCallback | None = None,
    ) -> tuple[Transcript, Usage]:
        self.calls += 1
        if self.calls <= self.failures:
            raise ProviderUnavailable("rate limited (429), retry after 1 s")
        return super().transcribe(media, on_progress=on_progress, on_usage=on_usage)


class FlakyWhisper(TranscriberResource):
    """The transcriber resource, handing the asset the test's flaky transcriber."""

    key: str

    def _build(self) -> Transcriber:
        return PREPARED[self.key]


PREPARED: dict[str, FlakyTranscriber] = {}


def _run_with_flaky_transcriber(
    services: Services, creator_id: str, tmp_path: Path, failures: int
) -> tuple[str, FlakyTranscriber, bool, int]:
    """Ingest a speech clip and run the job; returns video, provider, success, retries."""
    flaky = PREPARED[str(tmp_path)] = FlakyTranscriber(failures=failures)
    clip = speech_video(SPEECH_DIR / "jfk.wav", tmp_path / "jfk.mp4")
    video = services.ingest.ingest_file(creator_id, clip, title="JFK")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("videos", [video.id])
        result = defs.resolve_job_def("ingest_video").execute_in_process(
            instance=instance, partition_key=video.id, raise_on_error=False,
            run_config={"resources": resources_config(
                ChronosData(data_dir=str(services.settings.data_dir)))},
            resources={"transcriber": FlakyWhisper(key=str(tmp_path))},
        )
        retries = [e for e in instance.all_logs(result.run_id)
                   if e.dagster_event is not None
                   and e.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"]
    return video.id, flaky, result.success, len(retries)


def test_rate_limited_transcription_is_retried_and_the_video_gets_ready(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    video_id, flaky, success, retries = _run_with_flaky_transcriber(
        services, creator[0], tmp_path, failures=1)
    assert success and flaky.calls == 2 and retries == 1
    assert services.catalog.find_video(video_id).status is VideoStatus.READY


def test_a_provider_that_stays_down_fails_the_video_after_the_retries(
    services: Services, creator: tuple[str, str], tmp_path: Path
) -> None:
    video_id, flaky, success, retries = _run_with_flaky_transcriber(
        services, creator[0], tmp_path, failures=99)
    assert not success
    assert flaky.calls == 4 and retries == 3  # the first try and three retries
    failed = services.catalog.find_video(video_id)
    assert failed.status is VideoStatus.FAILED
    assert failed.error_message is not None and "rate limited" in failed.error_message
