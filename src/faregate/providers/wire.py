"""Small helpers every wire format shares: compact JSON bytes, strict body loading, data URLs, and
masking anything that looks like a credential before an upstream's words reach a log or a client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from faregate import jsonio
from faregate.canonical import JSONObject

_COMPACT: Final = (",", ":")

# Credentials upstreams echo back in error messages ("Incorrect API key provided: sk-proj-ab***yz"):
# OpenAI/Anthropic/DeepSeek `sk-`, Groq `gsk_`, generic `key-`, Google `AIza...`, and bearer tokens.
_SECRET: Final = re.compile(
    r"(?i)\b(?:sk|gsk|key|pk|rk|xai)[-_][A-Za-z0-9*._\-]{4,}|\bAIza[0-9A-Za-z_\-]{20,}|\bBearer\s+\S+"
)
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
    text = _SECRET.sub("[redacted]", text[: limit * 4])  # mask before cutting: no half key survives
    return text if len(text) <= limit else text[: limit - 1] + "…"


def data_url(media_type: str | None, data_b64: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data_b64}"


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
