"""JSON request bodies: every undecodable body is a 400, and a body is read as its schema says.

Litestar maps a malformed JSON body to a 400 but lets two decoding failures through as 500s:
bytes that are not UTF-8 inside a string, and nesting deeper than the decoder's recursion
limit. ``JsonRequest`` turns both into the same 400.

Litestar also converts a body leniently (``"stream": "true"`` becomes ``True``, ``"n": "2"``
becomes ``2``); OpenAI's API refuses a value of the wrong JSON type, and an SDK or a fuzzer
expects us to. ``strict_body(T)`` is a ``before_request`` hook that checks the body against
``T`` with msgspec's strict rules first and refuses it the way Litestar refuses a body that
fails its schema (``ValidationException``: 400 under ``/v1``, 422 elsewhere).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, SerializationException
from litestar.exceptions import ValidationException as RequestValidationFailed

# msgspec says where a value is wrong after its message: "... - at `$.messages[0].role`".
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$\.?(?P<key>[^`]*)`)?$", re.DOTALL)


class JsonRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except (UnicodeDecodeError, RecursionError, SerializationException) as exc:
            reason = ("the body is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else
                      "the body nests too deeply" if isinstance(exc, RecursionError) else
                      str(exc))
            raise ClientException(f"the request body is not valid JSON: {reason}") from exc


def strict_body(schema: type[msgspec.Struct]
                ) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """A ``before_request`` hook: the JSON body must be a ``schema`` without coercion."""

    async def check(request: Request[Any, Any, Any]) -> None:
        try:
            msgspec.convert(await request.json(), schema, strict=True)
        except msgspec.ValidationError as exc:
            said = _AT.match(str(exc))
            assert said is not None  # the pattern matches any text
            raise RequestValidationFailed(
                f"Validation failed for {request.method} {request.url.path}",
                extra=[{"message": said["message"], "key": said["key"] or "",
                        "source": "body"}],
            ) from exc

    return check
