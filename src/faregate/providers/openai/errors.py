"""Classify an OpenAI-compatible upstream's non-2xx answer by status and its error envelope's `type`.

Keeps only the envelope's message (truncated, key-like tokens masked), never the raw body.
"""

from __future__ import annotations

import json
from typing import Final

from faregate.errors import UpstreamError
from faregate.providers.wire import mask_secrets

# The channel's fault, not the request's: a bad or revoked key (401), a key without access (403), a model
# the provider no longer serves (404), a timeout or conflict (408, 409), rate limits (429). Another
# channel may well succeed. Every 5xx is retryable too; other 4xx are the request's own fault.
RETRYABLE_STATUSES: Final = frozenset({401, 403, 404, 408, 409, 429})


def is_retryable(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUSES


def _envelope(body: bytes) -> tuple[str | None, str | None]:
    """(message, type) from `{"error": {"message", "type", "code", "param"}}`, or from the looser shapes
    compatible servers use (`{"error": "..."}` on Ollama, `{"message": "..."}`); (None, None) otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    error = data.get("error", data)
    if isinstance(error, str):
        return error, None
    if not isinstance(error, dict):
        return None, None
    message, kind = error.get("message"), error.get("type") or error.get("code")
    return (
        message if isinstance(message, str) and message else None,
        kind if isinstance(kind, str) and kind else None,
    )


def classify_error(status: int, body: bytes) -> UpstreamError:
    message, error_type = _envelope(body)
    return UpstreamError(
        kind="status",
        message=mask_secrets(message) if message else f"HTTP {status}",
        status=status,
        retryable=is_retryable(status),
        error_type=mask_secrets(error_type, 64) if error_type else None,
    )
