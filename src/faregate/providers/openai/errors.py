"""Classify an OpenAI-compatible upstream's non-2xx answer by status and its error envelope's `type`.

Keeps only the envelope's message (truncated, key-like tokens masked), never the raw body.
"""

from __future__ import annotations

import json

from faregate.errors import UpstreamError
from faregate.providers.errors import status_error
from faregate.providers.wire import mask_secrets


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
    return status_error(
        status,
        mask_secrets(message) if message else None,
        mask_secrets(error_type, 64) if error_type else None,
    )
