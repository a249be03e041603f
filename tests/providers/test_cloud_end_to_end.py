"""Switching stages to cloud providers is a settings change: the pipeline and chat run on
the loopback servers, and the ledger reconciles with what the servers billed."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from litestar.testing import TestClient

from chronos_api.app import create_app
from chronos_pipeline.instance import open_instance
from chronos_pipeline.lib.catalog import VideoStatus
from chronos_pipeline.lib.services import Services
from chronos_pipeline.lib.settings import Settings
from chronos_pipeline.resources.data import ChronosData
from chronos_pipeline.runner import run_pending
from tests.api.test_chat import parse_sse
from tests.conftest import SAMPLE_MP4
from tests.loopback import cloud_env, loopback


def test_pipeline_and_chat_on_cloud_providers_reconcile_with_the_provider_bill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with loopback() as server:
        env = {**cloud_env(server, str(tmp_path / "data")),
               "CHRONOS_TRANSCRIBER": "openai", "CHRONOS_TRANSCRIPTION_PIECE_BYTES": "400000"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        services = Services(Settings.from_env())
        creator, key = services.catalog.create_creator("Cloud creator")
        video = services.ingest.ingest_file(creator.id, SAMPLE_MP4, title="Momentum")
        instance = open_instance(services.settings)
        outcomes = run_pending(instance, ChronosData())
        assert [o.success for o in outcomes] == [True]
        assert services.catalog.find_video(video.id).status is VideoStatus.READY
        assert services.vectors.name == "chunks__text_embedding_3_small"
        assert services.vectors.count(video.id) > 0

        with TestClient(create_app(services=services)) as client:
            response = client.post("/chat", json={"question": "Who introduced RSI?"},
                                   headers={"Authorization": f"Bearer {key}"})
        events = parse_sse(response.text)
        assert [n for n, _ in events][-1] == "done"
        answer = "".join(d["text"] for n, d in events if n == "answer")
        assert answer == server.answer
        done = events[-1][1]
        assert Decimal(done["cost_usd"]) > 0  # money travels as an exact decimal string

        _, rows = services.ledger.query(
            "SELECT provider, unit, sum(quantity), sum(cost_usd), count(*) FROM cost_records "
            "WHERE provider <> 'local' GROUP BY ALL ORDER BY ALL")
        billed: dict[str, float] = {}
        for bill in server.billed:
            for unit, quantity in bill.items():
                billed[unit] = billed.get(unit, 0) + quantity
        by_unit = {(p, u): (q, c, n) for p, u, q, c, n in rows}
        embed_calls = sum(1 for path, _ in server.requests if path == "/v1/embeddings")
        # Every embeddings call is one record; chat is one answer with input and output.
        assert by_unit[("openai", "input_token")][2] == embed_calls
        assert by_unit[("anthropic", "output_token")][0] == billed["output_token"]
        transcriptions = server.served("/v1/audio/transcriptions")
        assert transcriptions >= 2  # the sample was cut into pieces
        assert by_unit[("openai", "audio_second")][2] == transcriptions
        assert float(by_unit[("openai", "audio_second")][0]) == pytest.approx(
            billed["audio_second"])
        total = sum(Decimal(str(c)) for _, c, _ in by_unit.values())
        expected = (
            sum(Decimal(str(b["audio_second"])) for b in server.billed if "audio_second" in b)
            * Decimal("0.006") / 60
            + Decimal(int(by_unit[("openai", "input_token")][0])) * Decimal("0.02") / 10**6
            + Decimal(int(by_unit[("anthropic", "input_token")][0])) / 10**6
            + Decimal(int(billed["output_token"])) * 5 / 10**6
        )
        assert total == expected
        instance.dispose()
        services.close()
