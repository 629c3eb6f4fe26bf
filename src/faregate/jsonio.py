"""JSON on the hot path: orjson where it can, the standard library where orjson refuses.

A leaf module. orjson is several times faster at both ends. It refuses a few inputs the standard
library takes (escaped lone surrogates; when writing, integers past 64 bits and non-string keys), and
for those the standard library answers. Two differences remain, both towards valid, ordinary JSON:
integers past 64 bits are read as floats (as JavaScript reads them), and an infinite float is written
as null (the standard library writes `Infinity`, which is not JSON).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_COMPACT = (",", ":")


def loads(data: bytes | str) -> Any:
    """Parse JSON. Raises `json.JSONDecodeError` (a `ValueError`) or `UnicodeDecodeError` when invalid."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(obj: object, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON bytes. Text with lone surrogates (which UTF-8 cannot carry) is ASCII-escaped."""
    try:
        return orjson.dumps(obj, default=default)
    except TypeError:  # orjson.JSONEncodeError: a value orjson will not write
        text = json.dumps(obj, separators=_COMPACT, ensure_ascii=False, default=default)
        try:
            return text.encode()
        except UnicodeEncodeError:
            return json.dumps(obj, separators=_COMPACT, default=default).encode()
