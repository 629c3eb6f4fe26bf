"""Anthropic upstream failures: a non-2xx response or an in-stream `error` event, as an `UpstreamError`.

Classification goes by HTTP status and the structured `error.type` of Anthropic's envelope
(https://docs.anthropic.com/en/api/errors), never by message text; only the (masked, shortened) structured
message is kept, never the raw body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate.errors import UpstreamError
from faregate.providers.errors import StreamError, protocol_error, status_error
from faregate.providers.wire import mask_secrets

__all__ = ["StreamError", "classify_error", "protocol_error", "stream_error"]

# Anthropic's documented status for each error `type`: gives an in-stream `error` event (sent after a 200)
# the status it would have had as a response.
TYPE_STATUS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "invalid_request_error": 400,
        "authentication_error": 401,
        "billing_error": 402,
        "permission_error": 403,
        "not_found_error": 404,
        "request_too_large": 413,
        "rate_limit_error": 429,
        "api_error": 500,
        "timeout_error": 504,
        "overloaded_error": 529,
    }
)


def error_object(payload: Any) -> tuple[str | None, str | None]:
    """`(type, message)` from Anthropic's envelope `{"type": "error", "error": {"type", "message"}}`."""
    if not isinstance(payload, dict):
        return None, None
    err = payload.get("error")
    if not isinstance(err, dict):
        return None, None
    etype, message = err.get("type"), err.get("message")
    return (etype if isinstance(etype, str) else None), (message if isinstance(message, str) else None)


def classify_error(status: int, body: bytes) -> UpstreamError:
    """A non-2xx response from `POST /v1/messages`."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    etype, message = error_object(payload)
    return status_error(status, mask_secrets(message or f"HTTP {status}"), etype)


def stream_error(payload: Any) -> StreamError:
    """An `event: error` inside a 200 stream, e.g. `overloaded_error` mid-answer."""
    etype, message = error_object(payload)
    status = TYPE_STATUS.get(etype or "", 500)
    return StreamError(status_error(status, mask_secrets(message or "error event in stream"), etype))
