"""Bad requests get a clear error in OpenAI's envelope, with the right status, and never reach an upstream.

A raw aiohttp client: the SDK would refuse to send most of these.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from faregate.server.options import ServeOptions
from tests.conftest import Demo, DemoFactory
from tests.server.helpers import ENVELOPE_KEYS, HELLO

CHAT = "/v1/chat/completions"
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
async def http(demo: Demo) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(demo.url) as session:
        yield session


async def envelope(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    """The error object of an answer, checked: the status, exactly OpenAI's four keys, a request id."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    assert resp.headers["X-Faregate-Request-Id"]
    body = await resp.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert set(error) == ENVELOPE_KEYS
    assert isinstance(error["message"], str) and error["message"]
    return error


def chat_body(**fields: Any) -> bytes:
    return json.dumps({"model": "auto", "messages": HELLO, **fields}).encode()


BAD_BODIES: list[tuple[str, bytes, str | None]] = [
    ("malformed JSON", b'{"model": "auto", "messages": [', None),
    ("not UTF-8", b'{"model": "\xff"}', None),
    ("empty body", b"", None),
    ("a JSON array", b"[1, 2]", None),
    ("a JSON string", b'"hello"', None),
    ("null", b"null", None),
    ("missing messages", json.dumps({"model": "auto"}).encode(), "messages"),
    ("messages not a list", chat_body(messages="hello"), "messages"),
    ("messages empty", chat_body(messages=[]), "messages"),
    ("a message not an object", chat_body(messages=["hello"]), "messages[0]"),
    ("an unknown role", chat_body(messages=[{"role": "wizard", "content": "hi"}]), "messages[0].role"),
    ("max_tokens a string", chat_body(max_tokens="x"), "max_tokens"),
    ("max_tokens negative", chat_body(max_tokens=-1), "max_tokens"),
    ("temperature out of range", chat_body(temperature=5), "temperature"),
    ("temperature a string", chat_body(temperature="hot"), "temperature"),
    ("model not a string", chat_body(model=7), "model"),
    ("stream not a boolean", chat_body(stream="yes"), "stream"),
    ("tools not a list", chat_body(tools={"type": "function"}), "tools"),
    ("an unknown response_format", chat_body(response_format={"type": "yaml"}), "response_format.type"),
    ("provider not an object", chat_body(provider="openai"), "provider"),
    ("models not a list of strings", chat_body(models=[1, 2]), "models"),
]


@pytest.mark.parametrize(
    ("body", "param"), [(b, p) for _, b, p in BAD_BODIES], ids=[n for n, _, _ in BAD_BODIES]
)
async def test_a_bad_request_is_a_400_and_reaches_no_upstream(
    demo: Demo, http: aiohttp.ClientSession, body: bytes, param: str | None
) -> None:
    async with http.post(CHAT, data=body, headers=JSON_HEADERS) as resp:
        error = await envelope(resp, 400)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    assert demo.sim.received == ()


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unknown_model_is_a_404(demo: Demo, http: aiohttp.ClientSession, stream: bool) -> None:
    async with http.post(
        CHAT, data=chat_body(model="acme/nonexistent-9", stream=stream), headers=JSON_HEADERS
    ) as resp:
        error = await envelope(resp, 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert "acme/nonexistent-9" in error["message"]
    assert demo.sim.received == ()


async def test_an_unknown_model_in_the_header_is_a_404(demo: Demo, http: aiohttp.ClientSession) -> None:
    async with http.post(
        CHAT, data=chat_body(), headers={**JSON_HEADERS, "Faregate-Model": "acme/nope"}
    ) as resp:
        error = await envelope(resp, 404)
    assert error["code"] == "model_not_found"
    assert demo.sim.received == ()


async def test_an_unknown_fallback_model_is_a_404(demo: Demo, http: aiohttp.ClientSession) -> None:
    async with http.post(CHAT, data=chat_body(models=["auto", "acme/nope"]), headers=JSON_HEADERS) as resp:
        error = await envelope(resp, 404)
    assert error["param"] == "models[1]"
    assert demo.sim.received == ()


async def test_an_image_for_a_model_without_vision_is_a_400(demo: Demo, http: aiohttp.ClientSession) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]
    async with http.post(
        CHAT, data=chat_body(model="mistralai/codestral", messages=messages), headers=JSON_HEADERS
    ) as resp:
        error = await envelope(resp, 400)
    assert error["code"] == "no_capable_channel"
    assert demo.sim.received == ()


async def test_a_body_over_the_limit_is_a_413(make_demo: DemoFactory) -> None:
    demo = await make_demo(options=ServeOptions(max_body_bytes=2048, watch_interval_s=0))
    big = chat_body(messages=[{"role": "user", "content": "x" * 4096}])
    async with aiohttp.ClientSession(demo.url) as http:
        async with http.post(CHAT, data=big, headers=JSON_HEADERS) as resp:
            error = await envelope(resp, 413)
        assert error["code"] == "request_too_large"
        async with http.post(CHAT, data=chat_body(), headers=JSON_HEADERS) as resp:
            assert resp.status == 200  # under the limit: served
    assert [r.provider for r in demo.sim.received] == ["openrouter"]


@pytest.mark.parametrize("path", ["/v1/nope", "/v2/chat/completions", "/"])
async def test_an_unknown_path_is_a_404(demo: Demo, http: aiohttp.ClientSession, path: str) -> None:
    async with http.post(path, data=chat_body(), headers=JSON_HEADERS) as resp:
        error = await envelope(resp, 404)
    assert error["code"] == "not_found"
    assert demo.sim.received == ()


@pytest.mark.parametrize(
    ("method", "path"), [("GET", CHAT), ("PUT", CHAT), ("DELETE", "/v1/models"), ("GET", "/admin/reload")]
)
async def test_a_wrong_method_is_a_405(
    demo: Demo, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    async with http.request(method, path) as resp:
        error = await envelope(resp, 405)
    assert error["code"] == "method_not_allowed"
    assert "Allow" in resp.headers
    assert demo.sim.received == ()


async def test_the_server_keeps_serving_after_bad_requests(demo: Demo, http: aiohttp.ClientSession) -> None:
    for _, body, _ in BAD_BODIES:
        async with http.post(CHAT, data=body, headers=JSON_HEADERS) as resp:
            assert resp.status == 400
    async with http.post(CHAT, data=chat_body(), headers=JSON_HEADERS) as resp:
        assert resp.status == 200
    assert len(demo.sim.received) == 1


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (
            b'{"model": "auto", "temperature": NaN, "messages": [{"role": "user", "content": "hi"}]}',
            "temperature",
        ),
        (b'{"model": "auto", "top_p": Infinity, "messages": []}', "top_p"),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": '
            + b"[" * 2000
            + b"]" * 2000
            + b"}]}",
            "messages[0].content",
        ),
        (
            b'{"model": "auto", "tools": [{"type": "function", "function": {"parameters": '
            + b'{"a": ' * 200
            + b"1"
            + b"}" * 200
            + b"}}]}",
            "tools[0].function.parameters" + ".a" * 12,  # the path is named to 16 steps at most
        ),
    ],
    ids=["nan", "infinity", "deep-array", "deep-object"],
)
async def test_non_finite_numbers_and_deep_nesting_are_400_naming_the_field(
    demo: Demo, http: aiohttp.ClientSession, raw: bytes, param: str
) -> None:
    async with http.post(CHAT, data=raw, headers=JSON_HEADERS) as resp:
        error = await envelope(resp, 400)
    assert error["param"] == param
    assert not demo.sim.received
