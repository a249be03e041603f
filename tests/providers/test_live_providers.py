"""Against the real OpenAI and Anthropic APIs: never needed, run only with live keys.

Set CHRONOS_LIVE_OPENAI_KEY / CHRONOS_LIVE_ANTHROPIC_KEY to run them; they cost a few
hundredths of a cent. Everything they check is also checked against loopback servers.
"""

from __future__ import annotations

import os

import pytest

from chronos_pipeline.lib.providers.anthropic_chat import AnthropicChatModel
from chronos_pipeline.lib.providers.base import Finished, Passage
from chronos_pipeline.lib.providers.openai_embedder import OpenAIEmbedder
from chronos_pipeline.lib.token_counts import count_tokens

OPENAI_KEY = os.environ.get("CHRONOS_LIVE_OPENAI_KEY")
ANTHROPIC_KEY = os.environ.get("CHRONOS_LIVE_ANTHROPIC_KEY")


@pytest.mark.live
@pytest.mark.skipif(not OPENAI_KEY, reason="no live OpenAI key (CHRONOS_LIVE_OPENAI_KEY)")
def test_live_openai_embedding_reports_usage() -> None:
    vectors, usage = OpenAIEmbedder(api_key=OPENAI_KEY or "").embed(["hello lecture"])
    assert vectors.shape == (1, 1536) and usage.quantities["input_token"] > 0


@pytest.mark.live
@pytest.mark.skipif(not OPENAI_KEY, reason="no live OpenAI key (CHRONOS_LIVE_OPENAI_KEY)")
def test_live_openai_bills_the_tokens_the_shipped_cl100k_counts() -> None:
    texts = ["RSI was introduced by J. Welles Wilder in 1978.", "hello world",
             "Größe 東京 2 + 2 = 4 antidisestablishmentarianism"]
    _, usage = OpenAIEmbedder(api_key=OPENAI_KEY or "").embed(texts)
    assert usage.quantities["input_token"] == count_tokens("text-embedding-3-small", texts)


@pytest.mark.live
@pytest.mark.skipif(not ANTHROPIC_KEY,
                    reason="no live Anthropic key (CHRONOS_LIVE_ANTHROPIC_KEY)")
def test_live_anthropic_answer_reports_usage() -> None:
    passage = Passage("vd_0000000000000001", "Momentum", 112.0, 118.0,
                      "RSI was introduced by J. Welles Wilder in 1978.", 0.6)
    events = list(AnthropicChatModel(api_key=ANTHROPIC_KEY or "").answer(
        "Who introduced RSI?", [passage]))
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.usage[0].quantities["output_token"] > 0
