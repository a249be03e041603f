"""``chronos creators delete`` and ``chronos videos delete``: everything of theirs goes but
the cost ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from chronos_pipeline.lib.catalog_people import Principal
from chronos_pipeline.lib.services import Services
from tests.cli.test_cli import chronos
from tests.conftest import make_settings
from tests.media import make_video

CREATOR_TABLES = ("courses", "videos", "chat_sessions", "budgets", "budget_alerts",
                  "students", "invitations", "web_sessions")


def _creator_with_everything(services: Services, tmp_path: Path) -> str:
    catalog = services.catalog
    creator, _key = catalog.create_creator("Leaving")
    course = catalog.create_course(creator.id, "Markets")
    student, _ = catalog.create_student(creator.id, "Sam", (course.id,))
    catalog.create_invitation(creator.id, course.id)
    catalog.create_web_session(Principal(creator.id, creator.name))
    catalog.create_web_session(Principal(creator.id, student.display_name, student.id))
    for student_id in (None, student.id):
        chat = catalog.create_chat_session(creator.id, course.id, student_id, "Question")
        catalog.add_chat_message(chat.id, "user", "What is RSI?")
    catalog.set_budget(creator.id, Decimal(10))
    catalog.record_budget_alert(creator.id, "2026-11", 50, Decimal(5))
    silent = make_video(tmp_path / "silent.mp4", seconds=4, audio="silence")
    services.ingest.ingest_file(creator.id, silent, title="Lesson 1", course_id=course.id)
    kept = services.ingest.ingest_file(creator.id, silent, title="Lesson 2")
    services.catalog.claim_for_deletion(creator.id, kept.id)
    return creator.id


def _rows_of(services: Services, creator_id: str) -> dict[str, int]:
    with services.catalog.engine.connect() as db:
        counts = {t: db.execute(text(f"SELECT count(*) FROM {t} WHERE creator_id = :c"),
                                {"c": creator_id}).scalar_one() for t in CREATOR_TABLES}
        counts["creators"] = db.execute(text("SELECT count(*) FROM creators WHERE id = :c"),
                                        {"c": creator_id}).scalar_one()
        for table in ("chat_messages", "enrolments", "video_status_events"):
            counts[table] = db.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    return counts


def test_deleting_a_creator_leaves_no_row_of_theirs_and_keeps_their_costs(
    tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    services = Services(make_settings(data_dir))
    try:
        creator_id = _creator_with_everything(services, tmp_path)
        keeper, _ = services.catalog.create_creator("Staying")
        services.catalog.create_course(keeper.id, "Still here")
        _cols, costs_before = services.ledger.query(
            "SELECT count(*) FROM cost_records WHERE creator_id = ?", [creator_id])
        assert all(_rows_of(services, creator_id).values())

        refused = subprocess.run(
            [sys.executable, "-m", "chronos_pipeline.cli", "creators", "delete", creator_id],
            env={**os.environ, "CHRONOS_DATA_DIR": str(data_dir)}, input="yes\n",
            capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1 and "not deleted" in refused.stderr
        assert _rows_of(services, creator_id)["creators"] == 1

        out = chronos(data_dir, "creators", "delete", creator_id, "--yes")

        assert out.returncode == 0, out.stderr
        assert set(_rows_of(services, creator_id).values()) == {0}
        assert not (services.storage.videos_root / creator_id).exists()
        assert [c.id for c in services.catalog.list_creators()] == [keeper.id]
        assert len(services.catalog.list_courses(keeper.id)) == 1
        _cols, costs_after = services.ledger.query(
            "SELECT count(*) FROM cost_records WHERE creator_id = ?", [creator_id])
        assert costs_after == costs_before and costs_before[0][0] > 0
    finally:
        services.close()


def test_videos_delete_from_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = Services(make_settings(data_dir))
    try:
        creator, _ = services.catalog.create_creator("Ada")
        silent = make_video(tmp_path / "silent.mp4", seconds=4, audio="silence")
        video = services.ingest.ingest_file(creator.id, silent, title="Gone soon")

        out = chronos(data_dir, "videos", "delete", video.id, "--creator", creator.id)

        assert out.returncode == 0, out.stderr
        assert services.catalog.list_videos(creator.id) == []
        assert not services.storage.video_dir(creator.id, video.id).exists()
        again = chronos(data_dir, "videos", "delete", video.id, "--creator", creator.id)
        assert again.returncode == 1 and "no video" in again.stderr
    finally:
        services.close()
