"""JSON on the hot path: orjson where it can, the standard library where orjson refuses.

A leaf module. orjson is several times faster at both ends. It refuses a few inputs the standard
library takes (escaped lone surrogates; when writing, integers past 64 bits and non-string keys), and
for those the standard library answers. Two differences remain, both towards valid, ordinary JSON:
integers past 64 bits are read as floats (as JavaScript reads them), and an infinite float is written
as null (the standard library writes `Infinity`, which is not JSON).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

import orjson

_COMPACT = (",", ":")
MAX_DEPTH: Final = 128  # of a client's request: arrays and objects inside each other


class JsonLimitError(ValueError):
    """A request's JSON is valid but outside the gateway's bounds; `path` names the field (`a.b[2]`)."""

    def __init__(self, message: str, path: str | None) -> None:
        super().__init__(message)
        self.path = path


class _NonFinite:
    """What `NaN`, `Infinity` or an overflowing number parse into, so its place can be reported."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _number(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def loads_request(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """`loads` for what clients send: also refuses nesting deeper than `max_depth` and the non-finite
    numbers the standard library would accept (`NaN`, `Infinity`, `1e999`), with `JsonLimitError`
    naming where. Costs nothing extra on ordinary requests (orjson refuses non-finite numbers itself,
    and a body with fewer brackets than `max_depth` cannot be too deep)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(data, parse_constant=_NonFinite, parse_float=_number)
        except RecursionError:
            raise JsonLimitError(
                f"the JSON is nested deeper than {max_depth} levels", _deep_path(data, max_depth)
            ) from None
        _check(value, max_depth)
        return value
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") > max_depth:
        _check(value, max_depth)
    return value


def _path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _field(parts: list[str | int]) -> str:
    """The field a too-deep value sits in: its path up to the last object key (at most 16 steps)."""
    last = max((i for i, p in enumerate(parts[:16]) if isinstance(p, str)), default=min(len(parts), 16) - 1)
    return _path(parts[: last + 1])


def _check(value: Any, max_depth: int) -> None:
    """Depth and finiteness, without recursion (a deep value must not exhaust the stack)."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        v, where = stack.pop()
        if isinstance(v, _NonFinite):
            raise JsonLimitError(
                f"{v.text} is not a finite number: JSON numbers must be finite", _path(where)
            )
        if isinstance(v, dict | list):
            if len(where) >= max_depth:
                raise JsonLimitError(f"the JSON is nested deeper than {max_depth} levels", _field(where))
            items = v.items() if isinstance(v, dict) else enumerate(v)
            stack.extend((child, [*where, k]) for k, child in items)


_TOKEN: Final = re.compile(rb'"(?:[^"\\]|\\.)*"\s*:?|[\[\]{},]')


def _deep_path(data: bytes | str, max_depth: int) -> str | None:
    """Where a body too deep for any parser first passes `max_depth`, from its brackets and keys."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    frames: list[list[Any]] = []  # per open container: [is_array, the key or index now being filled]
    for m in _TOKEN.finditer(raw):
        tok = m.group()
        if tok in (b"[", b"{"):
            if len(frames) >= max_depth:
                return _field([f[1] for f in frames])
            frames.append([tok == b"[", 0 if tok == b"[" else ""])
        elif tok in (b"]", b"}"):
            if frames:
                frames.pop()
        elif tok == b",":
            if frames and frames[-1][0]:
                frames[-1][1] += 1
        elif tok.endswith(b":") and frames and not frames[-1][0]:
            key = tok.rstrip(b": \t\r\n")
            try:
                frames[-1][1] = json.loads(key)
            except ValueError:
                frames[-1][1] = key[1:-1].decode("utf-8", "replace")
    return None


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
