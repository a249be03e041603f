"""One error taxonomy for all of Chronos.

    ChronosError
    ├── TransientError            retry later: the same call may succeed
    │   ├── ProviderUnavailable   rate limit, timeout, 5xx, connection reset
    │   └── StorageBusy           a concurrent writer held the table or file
    ├── TerminalError             fail now: retrying cannot help
    │   ├── MediaError            not a video we can read, no audio, truncated, silent
    │   ├── NoSpeechError         the audio holds no speech to transcribe
    │   ├── PricingError          a model with no price in the price table
    │   ├── ConfigurationError    a setting that cannot work
    │   └── PipelineStateError    a stage's input is missing (run the upstream stage)
    └── ClientError               the caller asked for something wrong (HTTP 4xx)
        ├── AuthenticationError   missing or wrong API key            401
        ├── ForbiddenError        a student asking for a creator's route, a bad CSRF token  403
        ├── NotFoundError         no such video/course/session for this creator  404
        ├── ValidationError       a malformed request                  422
        │   └── IncompleteChunkError  a body shorter than its Content-Range  422 (+ offset)
        ├── UnsupportedMediaError the upload is not a video with sound 415
        ├── PayloadTooLargeError  the upload is over the size cap      413
        ├── ConflictError         the request does not fit the state   409
        │   └── UploadOffsetConflict  a chunk not starting at the held bytes  409 (+ offset)
        ├── RangeNotSatisfiableError  a byte range past the end of the file  416
        └── BudgetExceededError   the creator's hard spending limit is reached  402

The Dagster layer retries ``TransientError`` under a ``RetryPolicy`` and turns
``TerminalError`` into ``dagster.Failure``; the HTTP layer maps every ``ClientError`` to its
status code in one place. Errors that are also ``ResumeAt`` tell an uploading client how
many bytes the server holds, so it resumes from there and never from zero.
"""

from __future__ import annotations


class ChronosError(Exception):
    """Base of every error Chronos raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientError(ChronosError):
    """Retrying later may succeed."""


class ProviderUnavailable(TransientError):
    """A provider was rate limited, timed out or answered 5xx."""


class StorageBusy(TransientError):
    """A concurrent writer held the resource."""


class TerminalError(ChronosError):
    """Retrying cannot help; the creator has to act."""


class MediaError(TerminalError):
    """The media cannot be used (unreadable, truncated, no audio)."""


class NoSpeechError(TerminalError):
    """The audio holds no speech."""


class PricingError(TerminalError):
    """A billable event has no price."""


class ConfigurationError(TerminalError):
    """A setting cannot work."""


class PipelineStateError(TerminalError):
    """A stage's input is missing."""


class ClientError(ChronosError):
    """The caller asked for something wrong."""

    status_code = 400

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the status code needs (e.g. ``Content-Range`` on a 416)."""
        return {}


class AuthenticationError(ClientError):
    status_code = 401


class ForbiddenError(ClientError):
    status_code = 403


class NotFoundError(ClientError):
    status_code = 404


class ValidationError(ClientError):
    status_code = 422


class ResumeAt:
    """Mixed into the errors after which a client resumes its upload at ``offset``."""

    offset: int


class IncompleteChunkError(ValidationError, ResumeAt):
    """The body ended before its Content-Range did; the bytes that came are kept."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class UnsupportedMediaError(ClientError):
    status_code = 415


class PayloadTooLargeError(ClientError):
    status_code = 413


class ConflictError(ClientError):
    status_code = 409


class UploadOffsetConflict(ConflictError, ResumeAt):
    """A chunk that does not continue the bytes the server holds."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class BudgetExceededError(ClientError):
    status_code = 402


class RangeNotSatisfiableError(ClientError):
    status_code = 416

    def __init__(self, size: int) -> None:
        super().__init__(f"the requested byte range is outside the file ({size:,} bytes)")
        self.size = size

    @property
    def headers(self) -> dict[str, str]:
        return {"content-range": f"bytes */{self.size}"}
