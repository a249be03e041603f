"""The ``chronos`` command line, run as a user runs it: a subprocess per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SPEECH_DIR, World
from tests.media import make_video, speech_video


def chronos(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHRONOS_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "chronos_pipeline.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)


def _creator(data_dir: Path) -> str:
    out = chronos(data_dir, "creators", "create", "Ada")
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())
    assert lines["api_key"].startswith("chr_")
    return lines["creator_id"]


def test_ingest_wait_runs_the_pipeline_and_the_transcript_comes_out_as_json(
    tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    creator_id = _creator(data_dir)
    clip = speech_video(SPEECH_DIR / "jfk.wav", tmp_path / "jfk.mp4")
    out = chronos(data_dir, "ingest", str(clip), "--creator", creator_id, "--title", "JFK",
                  "--wait")
    assert out.returncode == 0, out.stderr
    video_id = out.stdout.strip()
    assert video_id.startswith("vd_")
    assert "transcribed" in out.stderr and "status: ready" in out.stderr

    status = chronos(data_dir, "status", video_id, "--json")
    assert json.loads(status.stdout)["status"] == "ready"

    transcript = json.loads(chronos(data_dir, "transcript", video_id, "--json").stdout)
    assert set(transcript) == {"video_id", "language", "duration_s", "segments"}
    segment = transcript["segments"][0]
    assert set(segment) == {"start_s", "end_s", "text", "words"}
    assert set(segment["words"][0]) == {"word", "start_s", "end_s"}
    assert "fellow Americans" in " ".join(s["text"] for s in transcript["segments"])
    same = chronos(data_dir, "transcript", video_id, "--format", "json").stdout
    assert json.loads(same) == transcript

    vtt = chronos(data_dir, "transcript", video_id, "--format", "vtt").stdout
    assert vtt.startswith("WEBVTT\n\n") and "fellow Americans" in " ".join(vtt.split())
    srt = chronos(data_dir, "transcript", video_id, "--format", "srt").stdout
    assert srt.startswith("1\n00:00:") and " --> " in srt.splitlines()[1]
    txt = chronos(data_dir, "transcript", video_id).stdout
    assert txt.startswith("[00:0") and "fellow Americans" in txt
    bad = chronos(data_dir, "transcript", video_id, "--format", "docx")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_ingest_of_a_text_file_fails_and_registers_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    creator_id = _creator(data_dir)
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n" * 100)
    out = chronos(data_dir, "ingest", str(notes), "--creator", creator_id)
    assert out.returncode == 1
    assert "not a video we can read" in out.stderr
    assert not list((data_dir / "storage" / "videos").glob("*/*"))


def test_ingest_wait_of_a_silent_video_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    creator_id = _creator(data_dir)
    silent = make_video(tmp_path / "silent.mp4", seconds=5, audio="silence")
    out = chronos(data_dir, "ingest", str(silent), "--creator", creator_id, "--wait")
    assert out.returncode == 1
    assert "no speech" in out.stderr


def test_unknown_creator_and_course_are_clear_errors(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    creator_id = _creator(data_dir)
    clip = make_video(tmp_path / "tone.mp4")
    out = chronos(data_dir, "ingest", str(clip), "--creator", "cr_0000000000000000")
    assert out.returncode == 1 and "no creator" in out.stderr
    out = chronos(data_dir, "ingest", str(clip), "--creator", creator_id, "--course",
                  "co_0000000000000000")
    assert out.returncode == 1 and "unknown course" in out.stderr


@pytest.mark.slow
def test_ask_json_and_costs_on_the_sample(world: World) -> None:
    data_dir = world.settings.data_dir
    out = chronos(data_dir, "ask", "--creator", world.creator_id, "--json",
                  "What is a golden cross?")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert set(answer) == {"answer", "references", "usage", "cost_usd", "covered", "title",
                           "rewrite_fell_back"}
    assert answer["rewrite_fell_back"] is False  # a first question is not rewritten
    assert set(answer["references"][0]) == {"video_id", "title", "start_s", "end_s",
                                            "timestamp", "text", "score", "verified",
                                            "claim", "note"}
    assert answer["covered"] is True and answer["references"][0]["verified"] is True
    assert answer["cost_usd"] == 0.0

    sql = chronos(data_dir, "costs", "sql", "--json",
                  "SELECT stage, count(*) AS n FROM cost_records GROUP BY stage ORDER BY stage")
    rows = {row["stage"]: row["n"] for row in json.loads(sql.stdout)}
    assert {"upload", "transcribe", "embed", "query-embed", "chat"} <= set(rows)

    report = chronos(data_dir, "costs", "report")
    assert report.returncode == 0 and world.video_id in report.stdout
    assert "transcribe" in report.stdout

    estimate = chronos(data_dir, "costs", "estimate-reembed", "--model",
                       "text-embedding-3-small")
    assert estimate.returncode == 0, estimate.stderr
    assert "openai/text-embedding-3-small" in estimate.stdout and "$0.0000" in estimate.stdout
    assert "counted by tiktoken cl100k_base" in estimate.stdout
    assert world.video_id in estimate.stdout
    estimate_id = estimate.stdout.split()[1].rstrip(":")
    attached = chronos(data_dir, "costs", "attach-run", "--estimate", estimate_id,
                       "--run-id", "run-cli")
    assert attached.returncode == 0, attached.stderr
    listed = chronos(data_dir, "costs", "estimates")
    [line] = [row for row in listed.stdout.splitlines() if row.startswith(estimate_id)]
    assert "text-embedding-3-small" in line and " run " in line  # paired by its run
    per_video = chronos(data_dir, "costs", "estimates", "--estimate", estimate_id)
    assert per_video.returncode == 0 and world.video_id in per_video.stdout
    unknown = chronos(data_dir, "costs", "estimate-reembed", "--model", "acme-embed-9")
    assert unknown.returncode == 1 and "acme-embed-9" in unknown.stderr

    bad = chronos(data_dir, "costs", "sql", "SELECT * FROM no_such_table")
    assert bad.returncode == 1 and "error" in bad.stderr


def test_budgets_set_and_show(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    creator_id = _creator(data_dir)
    out = chronos(data_dir, "budgets", "set", "--creator", creator_id, "--monthly", "10",
                  "--hard", "12.5")
    assert out.returncode == 0, out.stderr
    shown = json.loads(chronos(data_dir, "budgets", "show", "--creator", creator_id).stdout)
    assert shown["monthly_usd"] == "10" and shown["hard_limit_usd"] == "12.5"
    assert shown["spent_usd"] == "0" and shown["alerts"] == []
    bad = chronos(data_dir, "budgets", "set", "--creator", creator_id, "--monthly", "ten")
    assert bad.returncode == 1 and "--monthly must be a decimal amount" in bad.stderr


def test_costs_recompute_reports_and_refuses_a_bad_date(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    creator_id = _creator(data_dir)
    clip = make_video(tmp_path / "tone.mp4")
    assert chronos(data_dir, "ingest", str(clip), "--creator", creator_id).returncode == 0
    out = chronos(data_dir, "costs", "recompute", "--as-of", "2026-12-01")
    assert out.returncode == 0, out.stderr
    assert "upload" in out.stdout and "the ledger itself is unchanged" in out.stdout
    bad = chronos(data_dir, "costs", "recompute", "--as-of", "next week")
    assert bad.returncode == 1 and "--as-of must be a date" in bad.stderr
