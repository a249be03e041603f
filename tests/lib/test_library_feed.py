"""The library change feed: lecture states with their spend, and a version that moves only
when something a viewer would see changed."""

from __future__ import annotations

from decimal import Decimal

from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.library_feed import library_snapshot, library_version
from chronos_pipeline.lib.services import Services

WHISPER_MINUTE = Usage("openai", "whisper-1", {"audio_second": 60.0})


def _library(services: Services) -> tuple[str, str, str, list[str]]:
    catalog = services.catalog
    creator, _key = catalog.create_creator("Ada")
    course_a = catalog.create_course(creator.id, "Markets").id
    course_b = catalog.create_course(creator.id, "Options").id
    first = catalog.create_video(creator.id, "Moving averages", course_a).id
    second = catalog.create_video(creator.id, "RSI", course_a).id
    third = catalog.create_video(creator.id, "Greeks", course_b).id
    catalog.create_video(creator.id, "Still uploading", course_b)
    for video_id in (first, second, third):
        catalog.set_status(video_id, VideoStatus.UPLOADED)
    catalog.set_status(first, VideoStatus.TRANSCRIBING)
    catalog.set_progress(first, 0.4, 12.5)
    catalog.set_status(third, VideoStatus.FAILED, "no speech was found")
    services.ledger.record(WHISPER_MINUTE, creator_id=creator.id, stage="transcribe",
                           video_id=first)
    services.ledger.record(WHISPER_MINUTE, creator_id=creator.id, stage="transcribe",
                           video_id=first)
    return creator.id, course_a, course_b, [first, second, third]


def test_snapshot_lists_each_lecture_with_progress_error_and_cost_so_far(
    services: Services
) -> None:
    creator_id, course_a, _course_b, (first, second, third) = _library(services)
    other, _ = services.catalog.create_creator("Someone else")
    services.ledger.record(WHISPER_MINUTE, creator_id=other.id, stage="transcribe",
                           video_id=first)

    snapshot = library_snapshot(services.catalog, services.ledger, creator_id,
                                include_costs=True)

    by_id = {x.id: x for x in snapshot.lectures}
    assert sorted(x.id for x in snapshot.lectures) == sorted([first, second, third])
    assert (by_id[first].status, by_id[first].progress, by_id[first].eta_s) == (
        "transcribing", 0.4, 12.5)
    assert (by_id[first].course_id, by_id[first].position) == (course_a, 0)
    assert (by_id[second].course_id, by_id[second].position) == (course_a, 1)
    assert by_id[third].error_message == "no speech was found"
    assert by_id[first].cost_usd == Decimal("0.012")
    assert by_id[second].cost_usd == Decimal(0)
    as_json = {x["id"]: x for x in snapshot.to_json()["lectures"]}
    assert as_json[first]["cost_usd"] == "0.012000000000"
    assert snapshot.version == library_version(services.catalog, services.ledger, creator_id,
                                               include_costs=True)


def test_students_see_only_their_courses_lectures_and_no_costs(services: Services) -> None:
    creator_id, course_a, _course_b, (first, second, _third) = _library(services)

    snapshot = library_snapshot(services.catalog, services.ledger, creator_id,
                                course_ids={course_a}, include_costs=False)

    assert [x.id for x in snapshot.lectures] == [first, second]
    assert all(x.cost_usd is None for x in snapshot.lectures)
    assert all("cost_usd" not in x for x in snapshot.to_json()["lectures"])


def test_version_moves_on_progress_reorder_and_spend_and_stays_still_otherwise(
    services: Services
) -> None:
    catalog, ledger = services.catalog, services.ledger
    creator_id, _a, _b, (first, second, _third) = _library(services)

    def version(include_costs: bool = True) -> str:
        return library_version(catalog, ledger, creator_id, include_costs=include_costs)

    start = version()
    assert version() == start

    catalog.set_progress(first, 0.6, 8.0)
    after_progress = version()
    assert after_progress != start

    catalog.move_lesson(creator_id, second, 0)
    after_move = version()
    assert after_move != after_progress

    student_view = version(include_costs=False)
    ledger.record(WHISPER_MINUTE, creator_id=creator_id, stage="transcribe", video_id=first)
    assert version() != after_move
    assert version(include_costs=False) == student_view

    catalog.claim_for_deletion(creator_id, second)
    assert version(include_costs=False) != student_view


def test_a_snapshot_reuses_costs_until_a_ledger_file_lands(services: Services) -> None:
    catalog, ledger = services.catalog, services.ledger
    creator_id, _a, _b, (first, _second, _third) = _library(services)
    before = library_snapshot(catalog, ledger, creator_id, include_costs=True)

    catalog.set_progress(first, 0.9, 1.0)
    again = library_snapshot(catalog, ledger, creator_id, include_costs=True, previous=before)
    assert again.version != before.version
    assert [x.cost_usd for x in again.lectures] == [x.cost_usd for x in before.lectures]

    ledger.record(WHISPER_MINUTE, creator_id=creator_id, stage="transcribe", video_id=first)
    later = library_snapshot(catalog, ledger, creator_id, include_costs=True, previous=again)
    assert {x.id: x.cost_usd for x in later.lectures}[first] == Decimal("0.018")
