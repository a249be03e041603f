"""Hard limits that hold: a paid step reserves its expected cost before any provider request,
is refused when spent + reserved would pass the limit, and settles with its real cost."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.budgets import Budgets, expected_cost
from chronos_pipeline.lib.catalog import Catalog, VideoStatus
from chronos_pipeline.lib.dashboard import DashboardFilters, build_dashboard
from chronos_pipeline.lib.errors import BudgetExceededError
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.ledger_totals import LedgerTotals
from chronos_pipeline.lib.pricing import PriceTable
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.lib.steps import TRANSCRIPT, chunk_video, embed_video, transcribe_video
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.runner import run_pending
from tests.conftest import REPO, SAMPLE_MP4
from tests.lib.spend_worker import TEXT, embedder
from tests.loopback import Loopback, cloud_env, loopback

TRANSCRIPTIONS = "/v1/audio/transcriptions"


def spend(ledger: Ledger, creator_id: str, usd: Decimal) -> None:
    """Put exactly ``usd`` of paid transcription on the ledger ($0.0001 per second)."""
    ledger.record(Usage("openai", "whisper-1", {"audio_second": float(usd * 10_000)}),
                  creator_id=creator_id, stage="transcribe")


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, Loopback]]:
    """Transcription, embeddings and chat all on a loopback provider."""
    with loopback() as server:
        env = {**cloud_env(server, str(tmp_path / "data")), "CHRONOS_TRANSCRIBER": "openai",
               "CHRONOS_TRANSCRIPTION_PIECE_BYTES": "400000"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        services = Services(Settings.from_env())
        yield services, server
        services.close()


def test_creator_at_94_percent_uploading_a_lecture_that_would_pass_the_limit_is_refused_before_any_request(  # noqa: E501
    cloud: tuple[Services, Loopback],
) -> None:
    services, server = cloud
    creator, _ = services.catalog.create_creator("Near the limit")
    services.catalog.set_budget(creator.id, Decimal("0.05"))
    spend(services.ledger, creator.id, Decimal("0.047"))  # 94 %
    # 3 min 19 s of whisper-1 at $0.006/min is ~$0.0199: it would end at ~134 %.
    video = services.ingest.ingest_file(creator.id, SAMPLE_MP4, title="Momentum")
    instance = open_instance(services.settings)
    outcomes = run_pending(instance, ChronosData())
    instance.dispose()

    assert [o.success for o in outcomes] == [False]
    assert server.served(TRANSCRIPTIONS) == 0
    assert server.served("/v1/embeddings") == 0
    failed = services.catalog.find_video(video.id)
    assert failed.status is VideoStatus.FAILED
    assert failed.error_message is not None
    assert "spending limit of $0.05 would be passed" in failed.error_message
    assert "transcription may cost up to $0.0203" in failed.error_message
    status = services.budgets.status(creator.id)
    assert status.spent_usd == Decimal("0.047") <= status.budget.hard_limit_usd  # type: ignore[union-attr]
    assert status.reserved_usd == 0


def test_an_ingest_refused_at_embedding_keeps_its_transcript_and_never_pays_for_it_twice(
    cloud: tuple[Services, Loopback],
) -> None:
    services, server = cloud
    creator, _ = services.catalog.create_creator("Busy course")
    services.catalog.set_budget(creator.id, Decimal("0.05"))
    video = services.ingest.ingest_file(creator.id, SAMPLE_MP4, title="Momentum")
    transcribe_video(services, video.id)
    chunk_video(services, video.id)
    paid = services.budgets.spent_this_month(creator.id)
    assert services.budgets.status(creator.id).reserved_usd == 0  # settled
    # Students' questions spent the rest meanwhile.
    spend(services.ledger, creator.id, Decimal("0.05") - paid)
    with pytest.raises(BudgetExceededError, match=r"spending limit of \$0.05 is reached"):
        embed_video(services, video.id)
    assert server.served("/v1/embeddings") == 0
    assert services.budgets.spent_this_month(creator.id) == Decimal("0.05")
    assert services.storage.video_dir(creator.id, video.id).joinpath(TRANSCRIPT).is_file()

    services.catalog.set_budget(creator.id, Decimal("0.10"))
    transcriptions = server.served(TRANSCRIPTIONS)
    _transcript, result = transcribe_video(services, video.id)
    assert result.metadata["reused"] is True
    assert server.served(TRANSCRIPTIONS) == transcriptions
    chunk_video(services, video.id)
    embed_video(services, video.id)
    assert services.catalog.find_video(video.id).status is VideoStatus.READY
    assert server.served("/v1/embeddings") == 1


def test_a_question_whose_answer_could_pass_the_limit_gets_402_before_any_request(
    cloud: tuple[Services, Loopback],
) -> None:
    services, server = cloud
    creator, key = services.catalog.create_creator("Almost spent")
    headers = {"Authorization": f"Bearer {key}"}
    services.catalog.set_budget(creator.id, Decimal("0.01"))
    # Under the limit, but not by the longest answer Haiku may give (1,024 tokens ≈ $0.005).
    spend(services.ledger, creator.id, Decimal("0.006"))
    with TestClient(create_app(services=services)) as client:
        for path in ("/chat", "/chat/answer"):
            response = client.post(path, json={"question": "What is RSI?"}, headers=headers)
            assert response.status_code == 402
            assert "would be passed: this question may cost up to" in response.json()["detail"]
        assert client.get("/budget", headers=headers).json()["reserved_usd"] == "0"
        services.catalog.set_budget(creator.id, Decimal("0.02"))
        assert client.post("/chat/answer", json={"question": "What is RSI?"},
                           headers=headers).status_code == 200
    # The answer, then the new session's short title call: both held, both made.
    assert server.served("/v1/messages") == 2
    assert server.served("/v1/embeddings") == 1
    assert services.budgets.status(creator.id).reserved_usd == 0


def test_a_students_question_is_held_against_their_cap_before_any_request(
    cloud: tuple[Services, Loopback],
) -> None:
    services, server = cloud
    creator, _ = services.catalog.create_creator("Teacher")
    student, key = services.catalog.create_student(creator.id, "Sam")
    services.catalog.set_student_cap(creator.id, student.id, Decimal("0.004"))
    with TestClient(create_app(services=services)) as client:
        response = client.post("/chat/answer", json={"question": "What is RSI?"},
                               headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 402
    assert "$" not in response.json()["detail"]
    assert server.requests == []


def test_what_a_step_in_flight_holds_shows_on_the_budget_and_dashboard_until_it_settles(
    services: Services, creator: tuple[str, str],
) -> None:
    creator_id = creator[0]
    services.catalog.set_budget(creator_id, Decimal("1"))
    step = [Usage("openai", "text-embedding-3-small", {"input_token": 100_000})]  # $0.002
    with services.budgets.reserve(creator_id, step, stage="embed", ref="vd_0000000000000001"):
        assert services.budgets.status(creator_id).to_json()["reserved_usd"] == "0.002"
        board = build_dashboard(services.ledger, services.catalog, creator_id,
                                DashboardFilters())
        assert board.month.reserved_usd == Decimal("0.002")
        assert board.month.spent_usd == 0
    assert services.budgets.status(creator_id).reserved_usd == 0


def _catalog_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'catalog.sqlite3'}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_paid_steps_of_one_creator_near_the_limit_do_not_both_pass_it(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    url = _catalog_url(backend, request, tmp_path)
    catalog = Catalog(url)
    ledger = Ledger(tmp_path / "ledger", PriceTable.load(), totals=LedgerTotals(catalog))
    budgets = Budgets(catalog, ledger)
    creator, _ = catalog.create_creator("Contended")
    spend(ledger, creator.id, Decimal("0.01"))
    workers: list[subprocess.Popen[str]] = []
    with loopback() as server:
        step = expected_cost(ledger.prices, [embedder(server.base_url).expected_usage([TEXT])])
        try:
            for _ in range(4):
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "tests.lib.spend_worker", url, str(ledger.root),
                     server.base_url, creator.id],
                    cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            assert [_read(w) for w in workers] == ["ready"] * 4
            for _round in range(5):
                # Room for one step's expected cost, not two; every worker tries at once.
                limit = budgets.spent_this_month(creator.id) + step * Decimal("1.5")
                catalog.set_budget(creator.id, limit)
                for worker in workers:
                    _send(worker, "try")
                outcomes = sorted(_read(w) for w in workers)
                assert outcomes == ["held", "refused", "refused", "refused"]
                assert budgets.reserved_this_month(creator.id) == step
                for worker in workers:
                    _send(worker, "finish")
                assert [_read(w) for w in workers] == ["done"] * 4
                assert budgets.spent_this_month(creator.id) <= limit
                assert budgets.reserved_this_month(creator.id) == 0
        finally:
            for worker in workers:
                if worker.stdin is not None:
                    worker.stdin.close()
                worker.wait(timeout=30)
        assert server.served("/v1/embeddings") == 5
    catalog.close()


def _send(worker: subprocess.Popen[str], command: str) -> None:
    assert worker.stdin is not None
    worker.stdin.write(command + "\n")
    worker.stdin.flush()


def _read(worker: subprocess.Popen[str]) -> str:
    assert worker.stdout is not None
    return worker.stdout.readline().strip()
