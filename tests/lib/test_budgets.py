"""Monthly budgets: alerts at 50/80/100 %, and nothing is spent past the hard limit."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.runner import run_pending
from tests.conftest import SPEECH_DIR
from tests.loopback import Loopback, cloud_env, loopback
from tests.media import speech_video


def spend(services: Services, creator_id: str, output_tokens: int) -> None:
    """Put real-looking paid chat usage on the ledger ($5 per million output tokens)."""
    services.ledger.record(Usage("anthropic", "claude-haiku-4-5",
                                 {"output_token": output_tokens}),
                           creator_id=creator_id, stage="chat")


def test_alerts_are_recorded_once_at_each_threshold(
    services: Services, creator: tuple[str, str]
) -> None:
    creator_id = creator[0]
    services.catalog.set_budget(creator_id, Decimal("0.01"))
    spend(services, creator_id, 1000)  # $0.005 = 50 %
    assert services.budgets.record_alerts(creator_id) == [50]
    assert services.budgets.record_alerts(creator_id) == []
    spend(services, creator_id, 700)  # $0.0085 = 85 %
    assert services.budgets.record_alerts(creator_id) == [80]
    spend(services, creator_id, 400)  # $0.0105 = 105 %
    assert services.budgets.record_alerts(creator_id) == [100]
    status = services.budgets.status(creator_id)
    assert [a.threshold for a in status.alerts] == [50, 80, 100]
    assert status.spent_usd == Decimal("0.0105")


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, Loopback]]:
    with loopback() as server:
        for name, value in cloud_env(server, str(tmp_path / "data")).items():
            monkeypatch.setenv(name, value)
        services = Services(Settings.from_env())
        yield services, server
        services.close()


def test_creator_over_the_hard_limit_gets_402_and_no_provider_is_called(
    cloud: tuple[Services, Loopback]
) -> None:
    services, server = cloud
    creator, key = services.catalog.create_creator("Spender")
    headers = {"Authorization": f"Bearer {key}"}
    spend(services, creator.id, 400_000)  # $2
    with TestClient(create_app(services=services)) as client:
        put = client.put("/budget", json={"monthly_usd": "1.50"}, headers=headers)
        assert put.status_code == 200
        assert [a["threshold"] for a in put.json()["alerts"]] == [50, 80, 100]
        for path in ("/chat", "/chat/answer"):
            response = client.post(path, json={"question": "What is RSI?"}, headers=headers)
            assert response.status_code == 402
            assert "spending limit of $1.50 is reached" in response.json()["detail"]
        raised = client.put("/budget", json={"monthly_usd": "1.50", "hard_limit_usd": "3"},
                            headers=headers)
        assert raised.json()["hard_limit_usd"] == "3"
        assert raised.json()["monthly_usd"] == "1.5"
        answer = client.post("/chat/answer", json={"question": "What is RSI?"},
                             headers=headers)
        assert answer.status_code == 200
    # The answer and the new session's title call; nothing while over the limit.
    assert server.served("/v1/messages") == 2
    assert server.served("/v1/embeddings") == 1


def test_bad_budget_amounts_are_refused(cloud: tuple[Services, Loopback]) -> None:
    services, _ = cloud
    _, key = services.catalog.create_creator("Ada")
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(services=services)) as client:
        for body in ({"monthly_usd": "lots"}, {"monthly_usd": "-1"}, {"monthly_usd": "NaN"}):
            assert client.put("/budget", json=body, headers=headers).status_code == 422
        assert client.get("/budget", headers=headers).json()["monthly_usd"] is None


def test_pipeline_for_a_creator_over_budget_stops_before_spending(
    cloud: tuple[Services, Loopback], tmp_path: Path
) -> None:
    services, server = cloud
    creator, _ = services.catalog.create_creator("Spender")
    spend(services, creator.id, 400_000)
    services.catalog.set_budget(creator.id, Decimal("1"))
    clip = speech_video(SPEECH_DIR / "jfk.wav", tmp_path / "jfk.mp4")
    video = services.ingest.ingest_file(creator.id, clip, title="JFK")
    instance = open_instance(services.settings)
    outcomes = run_pending(instance, ChronosData())
    instance.dispose()
    assert [o.success for o in outcomes] == [False]
    failed = services.catalog.find_video(video.id)
    assert failed.status is VideoStatus.FAILED
    assert failed.error_message is not None and "spending limit" in failed.error_message
    _, rows = services.ledger.query(
        "SELECT count(*) FROM cost_records WHERE stage IN ('transcribe', 'embed')")
    assert rows == [(0,)]
    assert server.served("/v1/embeddings") == 0
