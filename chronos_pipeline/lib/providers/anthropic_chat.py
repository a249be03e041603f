"""Chat with Anthropic Claude (Haiku by default) through the ``anthropic`` SDK, streamed.

The system prompt and the retrieved context are marked for prompt caching when they are
long enough for the cache to take them (shorter prompts are never cached, and a cache
write costs 1.25× input). Usage comes from the provider: input tokens from
``message_start``, output and cache tokens from the final message; each unit is priced at
its own rate by the price table. If the stream breaks after the provider started billing,
the input it reported is still recorded, with the output estimated and marked so.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import anthropic
import httpx2
import numpy as np

from chronos_pipeline.lib.errors import ProviderUnavailable
from chronos_pipeline.lib.ledger import Usage
from chronos_pipeline.lib.providers.base import (
    MESSAGE_OVERHEAD_TOKENS,
    ChatEvent,
    ChatModel,
    Cited,
    Completion,
    Finished,
    Passage,
    TextDelta,
    Turn,
    at_most_tokens,
)
from chronos_pipeline.lib.providers.prompt import (
    SYSTEM_PROMPT,
    alternating,
    cited,
    context_block,
)
from chronos_pipeline.lib.providers.provider_errors import translate

# Prompts shorter than this are not cached by the provider (Haiku models' minimum), so
# marking them would only add cache-write cost.
MIN_CACHEABLE_TOKENS = 2048


class _BrokenStream(Exception):
    """The event stream ended without ``message_stop``."""


class AnthropicChatModel(ChatModel):
    provider = "anthropic"

    def __init__(self, *, api_key: str, model: str = "claude-haiku-4-5",
                 base_url: str | None = None, max_tokens: int = 1024,
                 timeout_s: float = 60.0, max_retries: int = 3) -> None:
        self.model_id = model
        self.max_tokens = max_tokens
        self._client: Any = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )

    def request(self, question: str, passages: Sequence[Passage],
                history: Sequence[Turn] = ()) -> dict[str, Any]:
        """The Messages API request, with cache breakpoints where caching pays; earlier
        turns come first, as the conversation's own messages."""
        context = context_block(passages)
        cacheable = (len(SYSTEM_PROMPT) + len(context)) // 4 >= MIN_CACHEABLE_TOKENS
        system: dict[str, Any] = {"type": "text", "text": SYSTEM_PROMPT}
        excerpts: dict[str, Any] = {"type": "text", "text": f"Lecture excerpts:\n\n{context}"}
        if cacheable:
            excerpts["cache_control"] = {"type": "ephemeral"}
        return {
            "model": self.model_id,
            "max_tokens": self.max_tokens,
            "system": [system],
            "messages": [
                *({"role": t.role, "content": t.text} for t in alternating(history)),
                {"role": "user", "content": [
                    excerpts, {"type": "text", "text": f"Question: {question}"},
                ]},
            ],
        }

    def expected_usage(self, question: str, passages: Sequence[Passage]) -> list[Usage]:
        request = self.request(question, passages)
        prompt = "".join(block["text"] for block in request["system"]) + "".join(
            block["text"] for block in request["messages"][0]["content"])
        tokens = at_most_tokens(prompt) + 2 * MESSAGE_OVERHEAD_TOKENS
        # A cacheable prompt may be written to the cache, which costs more than input.
        cached = any("cache_control" in block for block in request["messages"][0]["content"])
        unit = "cache_write_token" if cached else "input_token"
        return [Usage(self.provider, self.model_id,
                      {unit: tokens, "output_token": self.max_tokens}, estimated=True)]

    def complete(self, system: str, prompt: str, *, max_tokens: int) -> Completion:
        """One short non-streamed message, billed from the usage the API returns."""
        try:
            message = self._client.messages.create(
                model=self.model_id, max_tokens=max_tokens, system=system,
                messages=[{"role": "user", "content": prompt}])
        except (anthropic.AnthropicError, httpx2.HTTPError, ValueError) as exc:
            raise translate("Anthropic", exc) from exc
        text = "".join(b.text for b in message.content if getattr(b, "type", "") == "text")
        usage = message.usage
        return Completion(text, Usage(self.provider, self.model_id, {
            "input_token": int(usage.input_tokens or 0),
            "output_token": int(usage.output_tokens or 0),
        }))

    def answer(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = (), *,
        query_vector: np.ndarray | None = None,
    ) -> Iterator[ChatEvent]:
        text: list[str] = []
        started: dict[str, float] = {}
        stopped = False
        request = self.request(question, passages, history)
        try:
            with self._client.messages.stream(**request) as stream:
                for event in stream:
                    if event.type == "message_start":
                        usage = event.message.usage
                        started = {
                            "input_token": int(usage.input_tokens or 0),
                            "cache_write_token": int(usage.cache_creation_input_tokens or 0),
                            "cache_read_token": int(usage.cache_read_input_tokens or 0),
                        }
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        text.append(event.delta.text)
                        yield TextDelta(event.delta.text)
                    elif event.type == "message_stop":
                        stopped = True
                if not stopped:
                    raise _BrokenStream("the answer stream broke off before message_stop")
                final = stream.get_final_message()
        except (anthropic.AnthropicError, httpx2.HTTPError, ValueError, _BrokenStream) as exc:
            if started:
                # Billed from message_start on: record what the provider reported.
                estimate = {**started, "output_token": max(1, len("".join(text)) // 4)}
                yield Finished([Usage(self.provider, self.model_id, estimate, estimated=True)])
            if isinstance(exc, _BrokenStream):
                raise ProviderUnavailable(f"Anthropic: {exc}") from exc
            raise translate("Anthropic", exc) from exc
        usage = final.usage
        quantities: dict[str, float] = {
            "input_token": int(usage.input_tokens or 0),
            "output_token": int(usage.output_tokens or 0),
            "cache_write_token": int(usage.cache_creation_input_tokens or 0),
            "cache_read_token": int(usage.cache_read_input_tokens or 0),
        }
        yield Cited(cited("".join(text), passages))
        yield Finished([Usage(self.provider, self.model_id, quantities)])
