"""What every wire format shares about upstream failures: one retryable-status rule, one stream-error type.

    UpstreamError (faregate/errors.py)       one failed attempt, as an adapter classified it
    StreamError(ValueError)                  a started stream broke; `.error` is its UpstreamError
    MALFORMED                                what a decoder fed malformed data may raise (a protocol error)

Each `providers/<api>/errors.py` reads its own envelope (message, structured type) and builds the error
with `status_error`; none keeps its own list of statuses.
"""

from __future__ import annotations

from typing import Final

from faregate.errors import UpstreamError

# The channel's fault, not the request's: a bad or revoked key (401), a key without access (403), a model
# the provider no longer serves (404), a timeout or conflict (408, 409), rate limits (429). Another
# channel may well succeed. Every 5xx is retryable too; every other 4xx blames the request itself.
RETRYABLE_4XX: Final = frozenset({401, 403, 404, 408, 409, 429})

# A decoder given data that is not what its format promises (bad JSON, a missing field, a wrong type).
MALFORMED: Final = (ValueError, LookupError, TypeError, AttributeError)


def is_retryable(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_4XX


def status_error(
    status: int, message: str | None, error_type: str | None = None, *, retryable: bool | None = None
) -> UpstreamError:
    """A non-2xx answer (or an in-stream error standing for one). `retryable` overrides the status rule
    only where a format's structured error says better (Google's 400 for a bad key)."""
    return UpstreamError(
        kind="status",
        message=message or f"HTTP {status}",
        status=status,
        retryable=is_retryable(status) if retryable is None else retryable,
        error_type=error_type,
    )


class StreamError(ValueError):
    """A stream failed after its 200: an error event, a malformed event, an early end. Raised by a stream
    decoder; the plan walk marks the channel failed and the client's stream ends with an error event."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


def protocol_error(message: str) -> StreamError:
    """The stream broke its format's grammar: another channel may do better."""
    return StreamError(UpstreamError(kind="protocol", message=message[:200], retryable=True))


def decoder_error(e: Exception) -> UpstreamError:
    """The failure a decoder raised, as an attempt's error."""
    return e.error if isinstance(e, StreamError) else UpstreamError("protocol", str(e)[:200])
