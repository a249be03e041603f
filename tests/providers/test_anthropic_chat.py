"""Anthropic chat through the real SDK against a loopback server: streaming, cache pricing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from chronos_pipeline.lib.errors import ProviderUnavailable
from chronos_pipeline.lib.ledger import Ledger, Usage
from chronos_pipeline.lib.pricing import PriceTable
from chronos_pipeline.lib.providers.anthropic_chat import AnthropicChatModel
from chronos_pipeline.lib.providers.base import Cited, Finished, Passage, TextDelta
from chronos_pipeline.lib.providers.provider_errors import ProviderRefused
from tests.loopback import Loopback, loopback

CREATOR = "cr_0123456789abcdef"
PASSAGES = [
    Passage("vd_0000000000000001", "Momentum", 112.0, 118.0, "RSI was introduced in 1978.", 0.6),
    Passage("vd_0000000000000001", "Momentum", 40.0, 48.0, "The EMA weights recent days.", 0.3),
]


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback() as state:
        yield state


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger", PriceTable.load())


def _model(server: Loopback) -> AnthropicChatModel:
    return AnthropicChatModel(api_key="sk-ant-test", base_url=server.base_url, timeout_s=5)


def test_answer_streams_cites_what_it_mentions_and_reports_provider_usage(
    server: Loopback
) -> None:
    events = list(_model(server).answer("Who made RSI?", PASSAGES))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == server.answer
    cited = next(e for e in events if isinstance(e, Cited))
    assert [p.start_s for p in cited.passages] == [112.0]
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.usage[0].quantities == {
        "input_token": server.billed[0]["input_token"],
        "output_token": server.billed[0]["output_token"],
        "cache_write_token": 0, "cache_read_token": 0}


@pytest.mark.parametrize(
    ("quantities", "expected"),
    [
        # First question: 2 000 fresh input, 10 000 written to the cache, 500 out.
        # 2000×$1/M + 10000×$1.25/M + 500×$5/M = 0.002 + 0.0125 + 0.0025
        ({"input_token": 2000, "cache_write_token": 10000, "cache_read_token": 0,
          "output_token": 500}, Decimal("0.017")),
        # Follow-up: cached prefix read back at a tenth of the input price.
        # 50×$1/M + 10000×$0.10/M + 300×$5/M = 0.00005 + 0.001 + 0.0015
        ({"input_token": 50, "cache_write_token": 0, "cache_read_token": 10000,
          "output_token": 300}, Decimal("0.00255")),
    ],
    ids=["cache-write", "cache-read"],
)
def test_cached_tokens_are_priced_at_their_own_rates(
    server: Loopback, ledger: Ledger, quantities: dict[str, int], expected: Decimal
) -> None:
    server.cache_usage = {"cache_creation_input_tokens": quantities["cache_write_token"],
                          "cache_read_input_tokens": quantities["cache_read_token"]}
    events = list(_model(server).answer("Who made RSI?", PASSAGES))
    finished = events[-1]
    assert isinstance(finished, Finished)
    usage = finished.usage[0]
    # Anthropic's input_tokens excludes the cached tokens: they are never counted twice.
    assert usage.quantities["cache_write_token"] == quantities["cache_write_token"]
    assert usage.quantities["cache_read_token"] == quantities["cache_read_token"]
    priced = Usage("anthropic", "claude-haiku-4-5", quantities)
    ledger.record(priced, creator_id=CREATOR, stage="chat")
    _, rows = ledger.query("SELECT sum(cost_usd) FROM cost_records")
    assert rows[0][0] == expected


def test_ledger_total_equals_usage_times_price_to_the_micro_dollar(
    server: Loopback, ledger: Ledger
) -> None:
    server.cache_usage = {"cache_creation_input_tokens": 1234, "cache_read_input_tokens": 5678}
    for _ in range(3):
        finished = list(_model(server).answer("Who made RSI?", PASSAGES))[-1]
        assert isinstance(finished, Finished)
        ledger.record(finished.usage[0], creator_id=CREATOR, stage="chat")
    rates = {"input_token": Decimal(1), "output_token": Decimal(5),
             "cache_write_token": Decimal("1.25"), "cache_read_token": Decimal("0.10")}
    expected = sum(Decimal(b[unit]) * rate / 1_000_000
                   for b in server.billed for unit, rate in rates.items())
    _, rows = ledger.query("SELECT sum(cost_usd), count(DISTINCT record_id) FROM cost_records")
    assert abs(rows[0][0] - expected) < Decimal("0.000001")
    assert rows[0][1] == 12  # three calls × four units


def test_long_context_is_marked_for_caching_and_short_is_not(server: Loopback) -> None:
    model = _model(server)
    short = model.request("q", PASSAGES)
    assert "cache_control" not in short["messages"][0]["content"][0]
    long_passages = [Passage("vd_0000000000000001", "T", i * 10.0, i * 10.0 + 9,
                             "word " * 400, 0.5) for i in range(6)]
    long = model.request("q", long_passages)
    assert long["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_stream_cut_midway_records_the_reported_input_and_fails_transiently(
    server: Loopback
) -> None:
    server.faults["/v1/messages"] = ["cut"]
    events = []
    with pytest.raises(ProviderUnavailable, match="broke off"):
        for event in _model(server).answer("Who made RSI?", PASSAGES):
            events.append(event)
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.usage[0].estimated
    assert finished.usage[0].quantities["input_token"] > 0


def test_a_bad_key_is_refused_without_retrying(server: Loopback) -> None:
    server.faults["/v1/messages"] = ["401"]
    with pytest.raises(ProviderRefused, match="refused the API key"):
        list(_model(server).answer("Who made RSI?", PASSAGES))
    assert server.served("/v1/messages") == 1


def test_rate_limit_then_success_is_one_billed_answer(server: Loopback) -> None:
    server.faults["/v1/messages"] = ["429"]
    events = list(_model(server).answer("Who made RSI?", PASSAGES))
    assert server.served("/v1/messages") == 2
    assert sum(isinstance(e, Finished) for e in events) == 1
