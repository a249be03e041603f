"""The Chronos HTTP API (Litestar): uploads, videos, chat over SSE, usage."""
