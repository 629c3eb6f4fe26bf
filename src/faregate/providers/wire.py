"""Small helpers every wire format shares: compact JSON bytes, strict body loading, data URLs, and
masking anything that looks like a credential before an upstream's words reach a log or a client.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from faregate import jsonio
from faregate.canonical import FilePart, JSONObject
from faregate.secrets import scrub_known

_COMPACT: Final = (",", ":")

MAX_MESSAGE_CHARS: Final = 300


def _default(o: object) -> Any:
    """JSON for the few non-JSON types canonical values carry (frozen mappings, Decimal costs)."""
    if isinstance(o, Mapping):
        return dict(o)
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, tuple | frozenset):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def dumps(obj: object) -> bytes:
    """Compact UTF-8 JSON. Falls back to ASCII escapes when text holds lone surrogates (valid JSON input
    like "\\ud800" parses into them, and they cannot be encoded as UTF-8)."""
    return jsonio.dumps(obj, default=_default)


def load_object(body: bytes | str, what: str) -> JSONObject:
    """Parse a JSON object or raise `ValueError` with a short message (never the body itself)."""
    try:
        data = jsonio.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{what}: not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected a JSON object")
    return data


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def mask_secrets(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Truncate an upstream's message and hide anything key-like in it."""
    text = scrub_known(text[: limit * 4])  # mask before cutting: no half key survives
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """An upstream's `Retry-After` (RFC 9110: delay-seconds or an HTTP-date) as seconds from `now` (unix
    time); None when absent or unreadable. Never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value)) if value.replace(".", "", 1).isdigit() else _http_date(value, now)
    except (TypeError, ValueError, OverflowError):
        return None


def _http_date(value: str, now: float) -> float | None:
    when = email.utils.parsedate_to_datetime(value)
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def data_url(media_type: str | None, data_b64: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data_b64}"


def file_fields(part: FilePart) -> JSONObject:
    """OpenAI's names for a file (chat's `file` part, the Responses `input_file`): `file_id`, `file_url`,
    `file_data` (a data URL), `filename`, those the part has."""
    data = None if part.data_b64 is None else data_url(part.media_type, part.data_b64)
    fields = (
        ("file_id", part.file_id),
        ("file_url", part.url),
        ("file_data", data),
        ("filename", part.filename),
    )
    return {k: v for k, v in fields if v is not None}


def split_data_url(url: str) -> tuple[str, str] | None:
    """`data:<media_type>;base64,<data>` → (media_type, data); None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[:-7], data


JSON_TYPE_NAMES: Final[Mapping[type, str]] = MappingProxyType(
    {
        bool: "a boolean",
        int: "an integer",
        float: "a decimal",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }
)


def json_type_name(value: object) -> str:
    """How OpenAI's validation messages name a JSON value's type ("an integer", "an object", ...)."""
    return JSON_TYPE_NAMES.get(type(value), type(value).__name__)
