"""Provider-layer overhead: our providers (with ledger records) against the bare SDK calls.

Both sides talk to the same loopback server in the same run, so the ratio isolates what
Chronos adds per call: error translation, usage parsing, normalisation and, on our side,
pricing plus an append to the Parquet ledger.

Usage: ``python -m benchmarks.providers [CALLS]``
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import openai

from chronos_pipeline.lib.ledger import Ledger
from chronos_pipeline.lib.pricing import PriceTable
from chronos_pipeline.lib.providers.anthropic_chat import AnthropicChatModel
from chronos_pipeline.lib.providers.base import Finished, Passage
from chronos_pipeline.lib.providers.openai_embedder import OpenAIEmbedder
from tests.loopback import loopback

CREATOR = "cr_0123456789abcdef"
TEXTS = [f"chunk {i} about moving averages and the relative strength index" for i in range(16)]
PASSAGES = [Passage("vd_0000000000000001", "Momentum", 112.0, 118.0,
                    "RSI was introduced in 1978.", 0.6)]


def timed(calls: int, work: Callable[[], object]) -> float:
    work()  # warm the connection pool
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    calls = int(args[0]) if args else 200
    with loopback() as server, tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "ledger", PriceTable.load())
        raw_openai = openai.OpenAI(api_key="sk", base_url=f"{server.base_url}/v1")
        ours = OpenAIEmbedder(api_key="sk", base_url=f"{server.base_url}/v1")

        def embed_ours() -> None:
            _, usage = ours.embed(TEXTS)
            ledger.record(usage, creator_id=CREATOR, stage="embed")

        raw_embed = timed(calls, lambda: raw_openai.embeddings.create(
            model="text-embedding-3-small", input=TEXTS))
        our_embed = timed(calls, embed_ours)

        raw_anthropic = anthropic.Anthropic(api_key="sk", base_url=server.base_url)
        chat = AnthropicChatModel(api_key="sk", base_url=server.base_url)

        def chat_raw() -> None:
            with raw_anthropic.messages.stream(**chat.request("Who?", PASSAGES)) as stream:
                for _ in stream:
                    pass

        def chat_ours() -> None:
            for event in chat.answer("Who?", PASSAGES):
                if isinstance(event, Finished):
                    ledger.record(event.usage[0], creator_id=CREATOR, stage="chat")

        raw_chat = timed(calls // 2, chat_raw)
        our_chat = timed(calls // 2, chat_ours)
    print(f"{calls} embedding calls of 16 texts, {calls // 2} streamed answers, loopback")
    print(f"embeddings: SDK {raw_embed * 1000:.2f} ms/call, Chronos provider + ledger "
          f"{our_embed * 1000:.2f} ms/call, ratio {our_embed / raw_embed:.2f}")
    print(f"chat:       SDK {raw_chat * 1000:.2f} ms/call, Chronos provider + ledger "
          f"{our_chat * 1000:.2f} ms/call, ratio {our_chat / raw_chat:.2f}")


if __name__ == "__main__":
    main()
