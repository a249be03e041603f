"""`chronos eval`: a question file against a creator's lectures, scored as a user reads it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import chronos
from tests.conftest import SAMPLE_DIR, World

SAMPLE_QUESTIONS = SAMPLE_DIR / "questions.json"


def test_eval_on_the_sample_prints_every_metric_and_finds_the_moments(world: World) -> None:
    out = chronos(world.settings.data_dir, "eval", str(SAMPLE_QUESTIONS),
                  "--creator", world.creator_id, "--course", world.course_id)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("22 questions: 10 covered, 4 follow-ups, 8 off-topic")
    for label in ("hit@1", "hit@3", "MRR", "abstained off-topic", "false abstentions",
                  "citation precision", "cost", "questions/s"):
        assert label in text, label
    # At most one sample question is refused as not covered (tiny.en can mishear the term
    # it asks about; tests/api/test_chat.py says which), so at least 9 of 10 are found.
    rows = {line[:20].strip(): line[20:].split() for line in text.splitlines()[1:]}
    found, _covered = map(int, rows["hit@3"][0].split("/"))
    refused, _ = map(int, rows["false abstentions"][0].split("/"))
    assert found >= 9 and refused <= 1 and found + refused <= 10, text
    assert "follow-up hit@3     " in text


def test_eval_json_parses_and_its_cost_is_the_ledger_of_its_session(world: World) -> None:
    out = chronos(world.settings.data_dir, "eval", str(SAMPLE_QUESTIONS),
                  "--creator", world.creator_id, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    metrics = report["metrics"]
    assert (metrics["questions"], metrics["covered"], metrics["off_topic"],
            metrics["follow_ups"]) == (22, 10, 8, 4)
    assert metrics["hit_at_3"] >= 0.9 and metrics["hit_at_1"] <= metrics["hit_at_3"]
    assert metrics["follow_up_hit_at_3"] >= 0.75
    assert metrics["hit_at_1"] <= metrics["mrr"] <= 1.0
    assert 0.0 <= metrics["abstention"] <= 1.0
    assert 0.0 < metrics["citation_precision"] <= 1.0
    assert metrics["questions_per_s"] > 0
    assert len(report["results"]) == 22
    off_topic = [r for r in report["results"] if r["off_topic"]]
    assert metrics["abstention"] == sum(r["abstained"] for r in off_topic) / 8
    _, rows = world.services.ledger.query(
        "SELECT count(*), count(DISTINCT message_id), sum(cost_usd) FROM cost_records "
        "WHERE chat_session_id = ?", [report["session_id"]])
    records, messages, cost = rows[0]
    assert (records, messages, float(cost)) == (metrics["ledger_records"], 22,
                                                metrics["cost_usd"])


def test_a_malformed_question_file_is_a_clear_error_with_exit_code_2(
    world: World, tmp_path: Path
) -> None:
    path = tmp_path / "questions.json"
    path.write_text('[{"question": "Who?", "answer_at_s": 3}]')
    out = chronos(world.settings.data_dir, "eval", str(path), "--creator", world.creator_id)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.startswith(f"error: {path} is not a question file: Expected `object`")
    missing = chronos(world.settings.data_dir, "eval", str(tmp_path / "nope.json"),
                      "--creator", world.creator_id)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
