"""Gemini's error envelope `{"error": {"code", "message", "status", "details"}}` → `UpstreamError`.

Classified by HTTP status, the structured `status` and `details[].reason`, never by message text.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any, Final

from faregate.canonical import JSONObject
from faregate.errors import UpstreamError

# The channel's fault (its key, its access to this model, its quota), or a transient one: another
# channel may well succeed. 400 and the other 4xx blame the request itself and are returned as is.
RETRYABLE_STATUSES: Final = frozenset({401, 403, 404, 408, 429})

# Google answers some channel faults with a 400: a bad key (INVALID_ARGUMENT + reason API_KEY_INVALID),
# a project without billing or in an unsupported region (FAILED_PRECONDITION). These move on too.
CHANNEL_REASONS: Final = frozenset({"API_KEY_INVALID"})
CHANNEL_STATUSES: Final = frozenset({"FAILED_PRECONDITION"})

MAX_MESSAGE_CHARS: Final = 300
# Google API keys (AIza...), OpenAI-style keys (sk-...), OAuth access tokens (ya29....).
SECRET_PATTERN: Final = re.compile(r"(AIza|sk-|ya29\.)[0-9A-Za-z_\-.]{8,}")


def classify_error(status: int, body: bytes) -> UpstreamError:
    envelope = parse_envelope(body)
    google_status = _str(envelope.get("status"))
    retryable = (
        status >= 500
        or status in RETRYABLE_STATUSES
        or google_status in CHANNEL_STATUSES
        or bool(reasons(envelope) & CHANNEL_REASONS)
    )
    message = error_message({"error": envelope}) if envelope else ""
    return UpstreamError(
        kind="status",
        message=message or f"HTTP {status} {_phrase(status)}".rstrip(),
        status=status,
        retryable=retryable,
        error_type=google_status,
    )


def parse_envelope(body: bytes | str) -> JSONObject:
    """The `error` object, or {} when the body is not Google's envelope (an HTML page from a proxy, ...).
    Streaming endpoints may wrap it in a one-element array."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return {}
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def error_message(chunk: JSONObject) -> str:
    """`STATUS: message`, at most 300 characters, with anything key-like masked. Never the raw body."""
    error = chunk.get("error")
    if not isinstance(error, dict):
        return ""
    status, message = _str(error.get("status")), _str(error.get("message"))
    text = ": ".join(s for s in (status, message) if s)
    text = SECRET_PATTERN.sub(r"\1***", text)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


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
