"""Gemini's error envelope `{"error": {"code", "message", "status", "details"}}` → `UpstreamError`.

Classified by HTTP status, the structured `status` and `details[].reason`, never by message text.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Final

from faregate.canonical import JSONObject
from faregate.errors import UpstreamError
from faregate.providers.wire import mask_secrets

# The channel's fault (its key, its access to this model, its quota), or a transient one: another
# channel may well succeed. 400 and the other 4xx blame the request itself and are returned as is.
RETRYABLE_STATUSES: Final = frozenset({401, 403, 404, 408, 429})

# Google answers some channel faults with a 400: a bad key (INVALID_ARGUMENT + reason API_KEY_INVALID),
# a project without billing or in an unsupported region (FAILED_PRECONDITION). These move on too.
CHANNEL_REASONS: Final = frozenset({"API_KEY_INVALID"})
CHANNEL_STATUSES: Final = frozenset({"FAILED_PRECONDITION"})


class StreamError(ValueError):
    """A Gemini stream failed after its 200: an `error` chunk, or a chunk that is not a response."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


def classify_error(status: int, body: bytes) -> UpstreamError:
    return classify_envelope(status, parse_envelope(body))


def classify_envelope(status: int, envelope: JSONObject) -> UpstreamError:
    google_status = _str(envelope.get("status"))
    retryable = (
        status >= 500
        or status in RETRYABLE_STATUSES
        or google_status in CHANNEL_STATUSES
        or bool(reasons(envelope) & CHANNEL_REASONS)
    )
    return UpstreamError(
        kind="status",
        message=error_message(envelope) or f"HTTP {status} {_phrase(status)}".rstrip(),
        status=status,
        retryable=retryable,
        error_type=google_status,
    )


def stream_error(envelope: JSONObject) -> StreamError:
    """An `{"error": ...}` chunk: classified by the HTTP status it carries in `code`."""
    code = envelope.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    return StreamError(classify_envelope(status, envelope))


def protocol_error(message: str) -> StreamError:
    return StreamError(UpstreamError(kind="protocol", message=message, retryable=True))


def parse_envelope(body: bytes | str) -> JSONObject:
    """The `error` object, or {} when the body is not Google's envelope (an HTML page from a proxy, ...).
    Streaming endpoints may wrap it in a one-element array."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def error_message(envelope: JSONObject) -> str:
    """`STATUS: message`, at most 300 characters, anything key-like masked. Never the raw body."""
    text = ": ".join(s for s in (_str(envelope.get("status")), _str(envelope.get("message"))) if s)
    return mask_secrets(text)


def reasons(envelope: JSONObject) -> frozenset[str]:
    """The `reason`s of the `google.rpc.ErrorInfo` entries in `details`."""
    details = envelope.get("details")
    if not isinstance(details, list):
        return frozenset()
    return frozenset(r for d in details if isinstance(d, dict) and (r := _str(d.get("reason"))))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
