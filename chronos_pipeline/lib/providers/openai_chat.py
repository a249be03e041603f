"""Chat through any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM) with the ``openai`` SDK.

The base URL and model come from settings, so a local Ollama or vLLM server works as well
as OpenAI. Answers stream; usage comes from the final chunk (``stream_options``
``include_usage``). OpenAI counts cached prompt tokens inside ``prompt_tokens``, so they
are split out and priced as cache reads. A server that reports no usage gets an estimate,
marked as such; a model with no price in the table is an error naming it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx2
import numpy as np
import openai

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


def _estimate(text: str) -> int:
    return max(1, len(text) // 4)


class OpenAICompatibleChatModel(ChatModel):
    def __init__(self, *, model: str, base_url: str | None, api_key: str | None,
                 provider: str = "openai-compatible", max_tokens: int = 1024,
                 timeout_s: float = 60.0, max_retries: int = 3) -> None:
        self.provider = provider
        self.model_id = model
        self.max_tokens = max_tokens
        self._client: Any = openai.OpenAI(
            api_key=api_key or "not-needed", base_url=base_url, timeout=timeout_s,
            max_retries=max_retries,
        )

    def request(self, question: str, passages: Sequence[Passage],
                history: Sequence[Turn] = ()) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "max_tokens": self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                *({"role": t.role, "content": t.text} for t in alternating(history)),
                {"role": "user", "content": f"Lecture excerpts:\n\n{context_block(passages)}"
                                            f"\n\nQuestion: {question}"},
            ],
        }

    def _estimated(self, request: dict[str, Any], answer: str) -> Usage:
        prompt = "".join(str(m["content"]) for m in request["messages"])
        return Usage(self.provider, self.model_id,
                     {"input_token": _estimate(prompt), "output_token": _estimate(answer)},
                     estimated=True)

    def expected_usage(self, question: str, passages: Sequence[Passage]) -> list[Usage]:
        messages = self.request(question, passages)["messages"]
        tokens = sum(at_most_tokens(str(m["content"])) + MESSAGE_OVERHEAD_TOKENS
                     for m in messages)
        return [Usage(self.provider, self.model_id,
                      {"input_token": tokens, "output_token": self.max_tokens}, estimated=True)]

    def complete(self, system: str, prompt: str, *, max_tokens: int) -> Completion:
        """One short non-streamed completion, billed from its usage (estimated without)."""
        request: dict[str, Any] = {
            "model": self.model_id, "max_tokens": max_tokens,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": prompt}],
        }
        try:
            reply = self._client.chat.completions.create(**request)
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            raise translate(f"chat endpoint {self.model_id}", exc) from exc
        text = (reply.choices[0].message.content or "") if reply.choices else ""
        if reply.usage is None:
            return Completion(text, self._estimated(request, text))
        details = getattr(reply.usage, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", 0) or 0)
        return Completion(text, Usage(self.provider, self.model_id, {
            "input_token": int(reply.usage.prompt_tokens) - cached,
            "cache_read_token": cached,
            "output_token": int(reply.usage.completion_tokens),
        }))

    def answer(
        self, question: str, passages: Sequence[Passage], history: Sequence[Turn] = (), *,
        query_vector: np.ndarray | None = None,
    ) -> Iterator[ChatEvent]:
        request = self.request(question, passages, history)
        text: list[str] = []
        usage: Any = None
        finished = False
        try:
            for chunk in self._client.chat.completions.create(**request):
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        text.append(delta)
                        yield TextDelta(delta)
                    finished = finished or choice.finish_reason is not None
        except (openai.OpenAIError, httpx2.HTTPError, ValueError) as exc:
            if text:
                # The endpoint was generating (and billing) when the stream broke.
                yield Finished([self._estimated(request, "".join(text))])
            raise translate(f"chat endpoint {self.model_id}", exc) from exc
        answer = "".join(text)
        if not finished:
            yield Finished([self._estimated(request, answer)])
            raise ProviderUnavailable(
                f"chat endpoint {self.model_id}: the answer stream broke off before it finished"
            )
        yield Cited(cited(answer, passages))
        if usage is None:
            yield Finished([self._estimated(request, answer)])
            return
        details = getattr(usage, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", 0) or 0)
        quantities: dict[str, float] = {
            "input_token": int(usage.prompt_tokens) - cached,
            "cache_read_token": cached,
            "output_token": int(usage.completion_tokens),
        }
        yield Finished([Usage(self.provider, self.model_id, quantities)])
