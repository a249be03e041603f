"""Turning the openai and anthropic SDKs' errors into the Chronos taxonomy.

The SDKs already retry 429, 5xx and connection errors with exponential backoff and
jitter, honouring ``Retry-After``, and never retry other 4xx; what reaches us is the final
answer. Rate limits and outages stay transient (the Dagster RetryPolicy may try the step
again later); a refused key, exhausted quota or a bad request is terminal, with a message
a creator can act on.
"""

from __future__ import annotations

from chronos_pipeline.lib.errors import ChronosError, ProviderUnavailable, TerminalError


class ProviderRefused(TerminalError):
    """The provider answered, and the answer is no (bad key, no quota, bad request)."""


def translate(provider: str, exc: Exception) -> ChronosError:
    """The Chronos error for an SDK exception (call inside ``except`` and raise it ``from``)."""
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    detail = getattr(exc, "message", None) or str(exc)
    if name in {"APIConnectionError", "APITimeoutError"}:
        return ProviderUnavailable(f"{provider} could not be reached ({name}): {detail}")
    if status == 429:
        if "quota" in detail.lower() or "billing" in detail.lower():
            return ProviderRefused(f"{provider} quota is exhausted: {detail}")
        return ProviderUnavailable(f"{provider} is rate limiting us: {detail}")
    if isinstance(status, int) and status >= 500:
        return ProviderUnavailable(f"{provider} failed on its side (HTTP {status}): {detail}")
    if status in (401, 403):
        return ProviderRefused(
            f"{provider} refused the API key (HTTP {status}); check the key in the settings"
        )
    if status == 402:
        return ProviderRefused(f"{provider} needs payment: {detail}")
    if isinstance(status, int):
        return ProviderRefused(f"{provider} rejected the request (HTTP {status}): {detail}")
    return ProviderUnavailable(f"{provider} call failed ({name}): {detail}")
