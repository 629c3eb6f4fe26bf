"""Gemini's error envelope `{"error": {"code", "message", "status", "details"}}` → `UpstreamError`.

Classified by HTTP status, the structured `status` and `details[].reason`, never by message text.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Final

from faregate.canonical import JSONObject
from faregate.errors import UpstreamError
from faregate.providers.errors import StreamError, is_retryable, protocol_error, status_error
from faregate.providers.wire import mask_secrets

__all__ = ["StreamError", "classify_error", "protocol_error", "stream_error"]

# Google's structured status says better than the HTTP status (the shared rule) in two ways. Some channel
# faults come as a 400: a bad key (INVALID_ARGUMENT + reason API_KEY_INVALID), a project without billing or
# in an unsupported region (FAILED_PRECONDITION); these move on. And a 409 ABORTED or ALREADY_EXISTS is
# this request's own conflict, which another channel would not resolve: returned as is.
CHANNEL_REASONS: Final = frozenset({"API_KEY_INVALID"})
CHANNEL_STATUSES: Final = frozenset({"FAILED_PRECONDITION"})
REQUEST_STATUSES: Final = frozenset({"ABORTED", "ALREADY_EXISTS"})


def classify_error(status: int, body: bytes) -> UpstreamError:
    return classify_envelope(status, parse_envelope(body))


def classify_envelope(status: int, envelope: JSONObject) -> UpstreamError:
    google_status = _str(envelope.get("status"))
    retryable = (
        google_status in CHANNEL_STATUSES
        or bool(reasons(envelope) & CHANNEL_REASONS)
        or (is_retryable(status) and not (status < 500 and google_status in REQUEST_STATUSES))
    )
    message = error_message(envelope) or f"HTTP {status} {_phrase(status)}".rstrip()
    return status_error(status, message, google_status, retryable=retryable)


def stream_error(envelope: JSONObject) -> StreamError:
    """An `{"error": ...}` chunk: classified by the HTTP status it carries in `code`."""
    code = envelope.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    return StreamError(classify_envelope(status, envelope))


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
