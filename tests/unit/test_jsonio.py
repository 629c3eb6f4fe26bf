"""jsonio: orjson's speed, the standard library's answers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faregate import jsonio

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_round_trips_like_the_standard_library(value: object) -> None:
    text = jsonio.dumps(value)
    assert jsonio.loads(text) == json.loads(text) == json.loads(json.dumps(value))


@pytest.mark.parametrize("raw", ['"\\ud800"', '{"a": [1, 2, {"b": "\\udfff"}]}'])
def test_inputs_orjson_refuses_are_read_as_the_standard_library_reads_them(raw: str) -> None:
    assert jsonio.loads(raw) == json.loads(raw)


def test_the_two_documented_differences() -> None:
    assert jsonio.loads("123456789012345678901234567890") == 1.2345678901234568e29  # read as JavaScript does
    assert jsonio.dumps(float("inf")) == b"null"  # never the non-JSON `Infinity`


def test_values_orjson_will_not_write_fall_back() -> None:
    assert json.loads(jsonio.dumps({"big": 2**70})) == {"big": 2**70}
    assert jsonio.dumps({"s": "\ud800"}) == b'{"s":"\\ud800"}'  # UTF-8 cannot carry a lone surrogate
    assert json.loads(jsonio.dumps({"cost": Decimal("0.5")}, default=float)) == {"cost": 0.5}


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"[1,]", b"nul"])
def test_invalid_input_raises_what_json_raises(raw: bytes) -> None:
    with pytest.raises((ValueError, UnicodeDecodeError)):
        jsonio.loads(raw)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ('{"model": "x", "temperature": NaN}', "temperature"),
        ('{"a": [1, {"b": Infinity}]}', "a[1].b"),
        ('{"a": [1, 2, -Infinity]}', "a[2]"),
        ('{"top_p": 1e999}', "top_p"),
    ],
)
def test_non_finite_numbers_are_refused_with_their_place(body: str, path: str) -> None:
    with pytest.raises(jsonio.JsonLimitError) as caught:
        jsonio.loads_request(body)
    assert caught.value.path == path


@pytest.mark.parametrize("depth", [129, 1000, 5000])
def test_nesting_past_the_bound_is_refused_naming_the_field(depth: int) -> None:
    body = '{"messages": [{"role": "user", "content": ' + "[" * depth + "]" * depth + "}]}"
    with pytest.raises(jsonio.JsonLimitError) as caught:
        jsonio.loads_request(body)
    assert caught.value.path == "messages[0].content"


def test_ordinary_and_just_deep_enough_requests_pass() -> None:
    ok = "[" * 126 + "]" * 126  # inside {"a": [...]}: 127 levels
    assert jsonio.loads_request('{"a": ' + ok + "}")["a"] == json.loads(ok)
    assert jsonio.loads_request(b'{"x": 1.5, "s": "\\ud800"}') == {"x": 1.5, "s": "\ud800"}
