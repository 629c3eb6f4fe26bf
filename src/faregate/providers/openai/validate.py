"""OpenAI-worded validation of a client's JSON: one `InvalidRequest` per mistake, with OpenAI's message
style, error code and the `param` path (`messages[0].content`), and typed getters built on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar

from faregate.errors import InvalidRequest
from faregate.providers.wire import json_type_name

T = TypeVar("T", str, dict[str, Any], list[Any], bool)

EXPECTED: Final[Mapping[type, str]] = MappingProxyType(
    {str: "a string", dict: "an object", list: "an array", bool: "a boolean"}
)


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' is a required property", param=param, code="missing_required_parameter")


def bad_type(param: str, expected: str, value: object) -> InvalidRequest:
    got = json_type_name(value)
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def bad_value(param: str, value: object, supported: tuple[str, ...]) -> InvalidRequest:
    names = ", ".join(f"'{s}'" for s in supported)
    return InvalidRequest(
        f"Invalid value for '{param}': {value!r}. Supported values are: {names}.",
        param=param,
        code="invalid_value",
    )


def invalid(param: str, why: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(f"Invalid '{param}': {why}", param=param, code=code)


def wrong(param: str, expected: str, value: object) -> InvalidRequest:
    """Absent (or null) where a value is required, else of the wrong type."""
    return missing(param) if value is None else bad_type(param, expected, value)


def required(obj: Mapping[str, Any], key: str, param: str, kind: type[T]) -> T:
    value = obj.get(key)
    if isinstance(value, kind):
        return value
    raise wrong(param, EXPECTED[kind], value)


def optional(obj: Mapping[str, Any], key: str, param: str, kind: type[T]) -> T | None:
    value = obj.get(key)
    if value is None or isinstance(value, kind):
        return value
    raise bad_type(param, EXPECTED[kind], value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)  # JSON true is not a number


def number_in(obj: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if not _is_number(value):
        raise bad_type(key, "a decimal", value)
    if value < low:
        raise invalid(
            key, f"expected a value >= {low:g}, but got {value} instead.", "decimal_below_min_value"
        )
    if value > high:
        raise invalid(
            key, f"expected a value <= {high:g}, but got {value} instead.", "decimal_above_max_value"
        )
    return float(value)


def positive_int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_type(key, "an integer", value)
    if value < 1:
        raise invalid(key, f"expected a value >= 1, but got {value} instead.", "integer_below_min_value")
    return value
