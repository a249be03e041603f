"""`GET /usage` and `chronos costs` over a ledger with maintained totals and compaction:
the same figures before and after a compaction, month to date from the kept totals, one
report row per model, and no paid amount printed as 0."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.lib import costs
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.ledger_compaction import compact_ledger
from chronos_pipeline.lib.services import Services

VIDEO = "vd_0123456789abcdef"


def _spend(services: Services, creator_id: str) -> None:
    ledger = services.ledger
    for n in range(6):
        ledger.record(Usage("openai", "text-embedding-3-small", {"input_token": 4 + n}),
                      creator_id=creator_id, stage="embed", video_id=VIDEO)
    ledger.record(Usage("local", "sentence-transformers/all-MiniLM-L6-v2",
                        {"input_token": 50_000}), creator_id=creator_id, stage="embed",
                  video_id=VIDEO)
    ledger.record(Usage("anthropic", "claude-haiku-4-5", {"input_token": 1200,
                                                          "output_token": 300}),
                  creator_id=creator_id, stage="chat", student_id="st_0000000000000001")


def _usage(services: Services, key: str) -> dict[str, Any]:
    with TestClient(create_app(services=services)) as client:
        response = client.get("/usage", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_usage_is_the_same_before_and_after_compaction_and_month_to_date_is_kept(
    services: Services, creator: tuple[str, str],
) -> None:
    creator_id, key = creator
    _spend(services, creator_id)
    before = _usage(services, key)
    _, rows = services.ledger.query(
        "SELECT sum(cost_usd) FROM cost_records WHERE creator_id = ? AND occurred_at >= ?",
        [creator_id, costs.month_start()])
    # Money is an exact decimal string in the API.
    assert Decimal(before["month_to_date"]["spent_usd"]) == Decimal(rows[0][0])
    assert Decimal(before["total_cost_usd"]) == Decimal(rows[0][0]) > 0

    # The API compacts at start-up too: whichever ran, the ledger ends one file per day.
    report = compact_ledger(services.ledger, grace_s=0)
    assert report.files_after <= report.files_before
    days = [d for d in services.ledger.root.iterdir() if d.name.startswith("day=")]
    assert days and all(len(list(d.glob("*.parquet"))) == 1 for d in days)
    after = _usage(services, key)
    for name in ("total_cost_usd", "by_stage", "by_provider", "by_day"):
        assert after[name] == before[name]
    assert after["month_to_date"]["spent_usd"] == before["month_to_date"]["spent_usd"]


def _chronos(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHRONOS_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "chronos_pipeline.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_costs_report_has_a_row_per_model_and_prints_tiny_paid_amounts(
    services: Services, creator: tuple[str, str],
) -> None:
    creator_id, _ = creator
    services.ledger.record(Usage("openai", "text-embedding-3-small", {"input_token": 4}),
                           creator_id=creator_id, stage="embed", video_id=VIDEO)  # $0.00000008
    services.ledger.record(Usage("local", "sentence-transformers/all-MiniLM-L6-v2",
                                 {"input_token": 50_000}), creator_id=creator_id,
                           stage="embed", video_id=VIDEO)
    rows = costs.report_by_video_and_stage(services.ledger, creator_id).as_dicts()
    assert sorted((r["model"], r["quantity"], r["cost_usd"]) for r in rows) == [
        ("sentence-transformers/all-MiniLM-L6-v2", Decimal(50_000), Decimal(0)),
        ("text-embedding-3-small", Decimal(4), Decimal("0.00000008")),
    ]
    out = _chronos(services.settings.data_dir, "costs", "report")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if VIDEO in line]
    assert len(lines) == 2
    assert any("0.00000008" in line and " 4 " in f" {line} " for line in lines)


def test_costs_rebuild_check_and_compact_commands(
    services: Services, creator: tuple[str, str],
) -> None:
    creator_id, _ = creator
    _spend(services, creator_id)
    data_dir = services.settings.data_dir
    checked = _chronos(data_dir, "costs", "check-totals")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rebuilt = _chronos(data_dir, "costs", "rebuild-totals")
    assert rebuilt.returncode == 0 and "recounted 8 provider call(s)" in rebuilt.stdout
    compacted = _chronos(data_dir, "costs", "compact")
    assert compacted.returncode == 0 and "file(s)" in compacted.stdout
    assert _chronos(data_dir, "costs", "check-totals").returncode == 0
    _, rows = services.ledger.query("SELECT count(*) FROM cost_records")
    assert rows == [(9,)]
