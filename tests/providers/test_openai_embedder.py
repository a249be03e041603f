"""OpenAI embeddings through the real SDK against a loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from chronos_pipeline.lib.errors import ProviderUnavailable
from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.pricing import PriceTable
from chronos_pipeline.lib.providers.openai_embedder import OpenAIEmbedder
from chronos_pipeline.lib.providers.provider_errors import ProviderRefused
from tests.loopback import Loopback, loopback

CREATOR = "cr_0123456789abcdef"


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback() as state:
        yield state


def _embedder(server: Loopback, retries: int = 3) -> OpenAIEmbedder:
    return OpenAIEmbedder(api_key="sk-test", base_url=f"{server.base_url}/v1",
                          max_retries=retries, timeout_s=5)


def test_vectors_are_unit_length_and_usage_is_the_providers_count(server: Loopback) -> None:
    vectors, usage = _embedder(server).embed(["moving averages smooth prices", "RSI"])
    assert vectors.shape == (2, 1536)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The server counts words + 1 per input; a local estimate would say otherwise.
    assert usage.quantities == {"input_token": 7.0} and not usage.estimated


def test_429_with_retry_after_is_retried_and_billed_once(
    server: Loopback, tmp_path: Path
) -> None:
    server.faults["/v1/embeddings"] = ["429", "500"]
    ledger = Ledger(tmp_path / "ledger", PriceTable.load())
    _, usage = _embedder(server).embed(["a b c"])
    ledger.record(usage, creator_id=CREATOR, stage="embed")
    assert server.served("/v1/embeddings") == 3
    _, rows = ledger.query("SELECT count(*), sum(quantity), sum(cost_usd) FROM cost_records")
    # One billed call: 4 tokens at $0.02 per million.
    assert rows == [(1, 4.0, Decimal("0.00000008"))]


def test_a_bad_key_fails_at_once_with_a_readable_error(server: Loopback) -> None:
    server.faults["/v1/embeddings"] = ["401"]
    with pytest.raises(ProviderRefused, match="refused the API key"):
        _embedder(server).embed(["a"])
    assert server.served("/v1/embeddings") == 1


def test_an_outage_that_outlasts_the_retries_is_transient(server: Loopback) -> None:
    server.faults["/v1/embeddings"] = ["500", "500", "500"]
    with pytest.raises(ProviderUnavailable, match="HTTP 500"):
        _embedder(server, retries=2).embed(["a"])
    assert server.served("/v1/embeddings") == 3


def test_a_malformed_body_is_an_error_not_garbage_vectors(server: Loopback) -> None:
    server.faults["/v1/embeddings"] = ["malformed"]
    with pytest.raises(ProviderUnavailable, match="JSONDecodeError"):
        _embedder(server, retries=0).embed(["a"])


def test_a_call_that_times_out_is_retried_then_transient(server: Loopback) -> None:
    server.faults["/v1/embeddings"] = ["slow", "slow"]
    embedder = OpenAIEmbedder(api_key="sk-test", base_url=f"{server.base_url}/v1",
                              max_retries=1, timeout_s=0.5)
    with pytest.raises(ProviderUnavailable, match="APITimeoutError"):
        embedder.embed(["a"])
    assert server.served("/v1/embeddings") == 2


def test_a_slow_first_answer_is_retried_and_billed_once(server: Loopback) -> None:
    server.faults["/v1/embeddings"] = ["slow"]
    embedder = OpenAIEmbedder(api_key="sk-test", base_url=f"{server.base_url}/v1",
                              max_retries=2, timeout_s=0.5)
    _, usage = embedder.embed(["a b"])
    assert usage.quantities == {"input_token": 3.0}
    assert server.served("/v1/embeddings") == 2
