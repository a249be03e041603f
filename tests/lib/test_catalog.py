"""The catalog on SQLite and PostgreSQL: keys, scoping, courses, status history."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from chronos_pipeline.lib.catalog import Catalog, VideoStatus, hash_api_key
from chronos_pipeline.lib.errors import AuthenticationError, NotFoundError, ValidationError


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
    built = Catalog(url)
    yield built
    built.close()


def test_api_key_is_stored_only_as_a_hash_and_authenticates(catalog: Catalog) -> None:
    creator, key = catalog.create_creator("Ada")
    with catalog.engine.connect() as connection:
        stored = connection.execute(text("SELECT api_key_hash FROM creators")).scalar_one()
    assert stored == hash_api_key(key) and key not in stored
    assert catalog.authenticate(key).id == creator.id


def test_wrong_or_missing_api_key_is_refused(catalog: Catalog) -> None:
    catalog.create_creator("Ada")
    with pytest.raises(AuthenticationError):
        catalog.authenticate("chr_not-a-key")
    with pytest.raises(AuthenticationError):
        catalog.authenticate(None)


def test_rotated_key_replaces_the_old_one(catalog: Catalog) -> None:
    creator, old = catalog.create_creator("Ada")
    new = catalog.rotate_api_key(creator.id)
    assert catalog.authenticate(new).id == creator.id
    with pytest.raises(AuthenticationError):
        catalog.authenticate(old)


def test_a_creator_never_sees_another_creators_video(catalog: Catalog) -> None:
    ada, _ = catalog.create_creator("Ada")
    bob, _ = catalog.create_creator("Bob")
    video = catalog.create_video(ada.id, "Lecture 1")
    with pytest.raises(NotFoundError):
        catalog.get_video(bob.id, video.id)
    assert catalog.list_videos(bob.id, include_unlisted=True) == []
    assert [v.id for v in catalog.list_videos(ada.id, include_unlisted=True)] == [video.id]


def test_an_unfinished_upload_is_not_listed_as_a_lecture(catalog: Catalog) -> None:
    ada, _ = catalog.create_creator("Ada")
    catalog.create_video(ada.id, "Still uploading")
    assert catalog.list_videos(ada.id) == []


def test_video_in_unknown_or_foreign_course_is_refused_and_not_created(catalog: Catalog) -> None:
    ada, _ = catalog.create_creator("Ada")
    bob, _ = catalog.create_creator("Bob")
    bobs_course = catalog.create_course(bob.id, "Bob's course")
    with pytest.raises(NotFoundError, match="unknown course"):
        catalog.create_video(ada.id, "Lecture", course_id=bobs_course.id)
    with pytest.raises(ValidationError):
        catalog.create_video(ada.id, "Lecture", course_id="not-an-id")
    assert catalog.list_videos(ada.id, include_unlisted=True) == []


def test_status_changes_are_kept_with_their_times_and_failure_message(catalog: Catalog) -> None:
    ada, _ = catalog.create_creator("Ada")
    video = catalog.create_video(ada.id, "Lecture", original_filename="l.mp4")
    for status in (VideoStatus.UPLOADED, VideoStatus.QUEUED, VideoStatus.TRANSCRIBING):
        catalog.set_status(video.id, status)
    failed = catalog.set_status(video.id, VideoStatus.FAILED, "no speech was found")
    assert failed.error_message == "no speech was found"
    history = catalog.status_history(video.id)
    assert [e.status for e in history] == [
        VideoStatus.AWAITING_UPLOAD, VideoStatus.UPLOADED, VideoStatus.QUEUED,
        VideoStatus.TRANSCRIBING, VideoStatus.FAILED,
    ]
    assert all(a.at <= b.at for a, b in itertools.pairwise(history))


def test_large_video_sizes_fit(catalog: Catalog) -> None:
    ada, _ = catalog.create_creator("Ada")
    video = catalog.create_video(ada.id, "Long lecture")
    stored = catalog.record_upload(video.id, container="mp4", duration_s=3600.0,
                                   size_bytes=5 * 1024**3)
    assert catalog.get_video(ada.id, stored.id).size_bytes == 5 * 1024**3


def test_chat_history_is_scoped_to_its_creator(catalog: Catalog) -> None:
    ada, _ = catalog.create_creator("Ada")
    bob, _ = catalog.create_creator("Bob")
    session = catalog.create_chat_session(ada.id, None)
    catalog.add_chat_message(session.id, "user", "What is RSI?")
    catalog.add_chat_message(session.id, "assistant", "An oscillator.", [{"start_s": 1.0}])
    assert [m.role for m in catalog.chat_messages(session.id)] == ["user", "assistant"]
    with pytest.raises(NotFoundError):
        catalog.get_chat_session(bob.id, session.id)
