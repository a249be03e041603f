"""Chat through an OpenAI-compatible endpoint (Ollama, vLLM, OpenAI) with the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from chronos_pipeline.lib.errors import PricingError, ProviderUnavailable
from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.pricing import PriceTable
from chronos_pipeline.lib.providers.base import Cited, Finished, Passage, TextDelta
from chronos_pipeline.lib.providers.openai_chat import OpenAICompatibleChatModel
from chronos_pipeline.lib.providers.provider_errors import ProviderRefused
from tests.loopback import Loopback, loopback

CREATOR = "cr_0123456789abcdef"
PASSAGES = [Passage("vd_0000000000000001", "Momentum", 112.0, 118.0,
                    "RSI was introduced in 1978.", 0.6)]


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback() as state:
        yield state


def _model(server: Loopback, model: str = "llama3.2",
           provider: str = "openai-compatible") -> OpenAICompatibleChatModel:
    return OpenAICompatibleChatModel(model=model, base_url=f"{server.base_url}/v1",
                                     api_key=None, provider=provider, timeout_s=5)


def test_local_endpoint_streams_and_costs_zero_per_the_price_table(
    server: Loopback, tmp_path: Path
) -> None:
    events = list(_model(server).answer("Who made RSI?", PASSAGES))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == server.answer
    assert any(isinstance(e, Cited) for e in events)
    finished = events[-1]
    assert isinstance(finished, Finished) and not finished.usage[0].estimated
    ledger = Ledger(tmp_path / "ledger", PriceTable.load())
    records = ledger.record(finished.usage[0], creator_id=CREATOR, stage="chat")
    assert {r.unit for r in records} == {"input_token", "output_token"}
    assert sum(r.cost_usd for r in records) == 0


def test_openai_cached_prompt_tokens_are_split_out_and_priced_as_cache_reads(
    server: Loopback, tmp_path: Path
) -> None:
    server.openai_cached_tokens = 40
    finished = list(_model(server, "gpt-4o-mini", "openai").answer("Who?", PASSAGES))[-1]
    assert isinstance(finished, Finished)
    quantities = finished.usage[0].quantities
    billed = server.billed[-1]
    assert quantities == {"input_token": billed["input_token"], "cache_read_token": 40,
                          "output_token": billed["output_token"]}
    ledger = Ledger(tmp_path / "ledger", PriceTable.load())
    records = ledger.record(finished.usage[0], creator_id=CREATOR, stage="chat")
    expected = (Decimal(billed["input_token"]) * Decimal("0.15") + 40 * Decimal("0.075")
                + Decimal(billed["output_token"]) * Decimal("0.60")) / 1_000_000
    assert sum(r.cost_usd for r in records) == expected


def test_a_model_missing_from_the_price_table_is_an_error_naming_it(
    server: Loopback, tmp_path: Path
) -> None:
    finished = list(_model(server, "mistral-large").answer("Who?", PASSAGES))[-1]
    assert isinstance(finished, Finished)
    ledger = Ledger(tmp_path / "ledger", PriceTable.load())
    with pytest.raises(PricingError, match="mistral-large"):
        ledger.record(finished.usage[0], creator_id=CREATOR, stage="chat")


def test_an_endpoint_without_usage_gets_a_marked_estimate(server: Loopback) -> None:
    server.faults["/v1/chat/completions"] = ["nousage"]
    finished = list(_model(server).answer("Who?", PASSAGES))[-1]
    assert isinstance(finished, Finished) and finished.usage[0].estimated
    assert finished.usage[0].quantities["output_token"] > 0


def test_stream_cut_midway_is_estimated_and_transient(server: Loopback) -> None:
    server.faults["/v1/chat/completions"] = ["cut"]
    events = []
    with pytest.raises(ProviderUnavailable):
        for event in _model(server).answer("Who?", PASSAGES):
            events.append(event)
    assert isinstance(events[-1], Finished) and events[-1].usage[0].estimated


def test_a_refused_key_is_not_retried(server: Loopback) -> None:
    server.faults["/v1/chat/completions"] = ["401"]
    with pytest.raises(ProviderRefused):
        list(_model(server).answer("Who?", PASSAGES))
    assert server.served("/v1/chat/completions") == 1
