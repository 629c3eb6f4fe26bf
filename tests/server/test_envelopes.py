"""Each route answers errors in the envelope its format declares (server/envelope.py), whatever raised them:
the handler, the router (404, 405), a format's catch-all below its prefix. A new format's route brings its
own envelope without a line in the middleware."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from faregate.errors import FaregateError, InvalidRequest
from faregate.server.envelope import Route, add_routes, speaks
from faregate.server.middleware import error_envelope
from tests.conftest import Demo
from tests.server.helpers import ENVELOPE_KEYS

GOOGLE_KEYS = {"code", "message", "status"}


def shape(body: Any) -> str:
    if (
        isinstance(body, dict)
        and body.get("type") == "error"
        and set(body.get("error", {})) == {"type", "message"}
    ):
        return "anthropic"
    if isinstance(body, dict) and set(body.get("error", {})) == GOOGLE_KEYS:
        return "google"
    if isinstance(body, dict) and set(body.get("error", {})) == ENVELOPE_KEYS:
        return "openai"
    return f"unknown: {body!r}"


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        ("POST", "/v1/messages", 400, "anthropic"),  # the handler's error
        ("GET", "/v1/messages", 405, "anthropic"),  # the router's
        ("PUT", "/api/v1/messages/count_tokens", 405, "anthropic"),
        ("POST", "/v1/messages/batches", 404, "anthropic"),  # Anthropic's catch-all
        ("POST", "/v1beta/models/auto:generateContent", 400, "google"),
        ("POST", "/v1beta/models", 405, "google"),  # Gemini's catch-all: another method serves the path
        ("POST", "/v1beta/files", 404, "google"),  # ... nothing does
        ("POST", "/v1/models/auto:generateContent", 400, "google"),
        ("GET", "/v1/models/no-such-model", 404, "openai"),
        ("GET", "/v1/chat/completions", 405, "openai"),
        ("POST", "/v1/nope", 404, "openai"),
    ],
)
async def test_every_error_in_its_routes_envelope(
    demo: Demo, method: str, path: str, status: int, expected: str
) -> None:
    async with aiohttp.ClientSession() as s, s.request(method, demo.url + path, data=b"{}") as r:
        body = await r.json()
        assert r.status == status, body
        assert r.headers["X-Faregate-Request-Id"]
        if status == 405:
            assert r.headers["Allow"]
    assert shape(body) == expected


async def test_a_google_client_listing_models_gets_googles_envelope(demo: Demo) -> None:
    headers = {"x-goog-api-client": "google-genai-sdk"}
    async with aiohttp.ClientSession() as s:
        async with s.get(demo.url + "/v1/models/no-such-model", headers=headers) as r:
            assert r.status == 404 and shape(await r.json()) == "google"
        async with s.get(demo.url + "/v1/models/no-such-model") as r:
            assert r.status == 404 and shape(await r.json()) == "openai"


async def test_a_new_formats_route_brings_its_own_envelope() -> None:
    def mine(e: FaregateError) -> dict[str, Any]:
        return {"problem": e.message, "status": e.status}

    async def handle(request: web.Request) -> web.StreamResponse:
        raise InvalidRequest("no good")

    app = web.Application(middlewares=[error_envelope])
    add_routes(app, [Route("POST", "/v9/mine", handle, speaks(mine)), Route("POST", "/v9/theirs", handle)])
    async with TestClient(TestServer(app)) as client:
        r = await client.post("/v9/mine")
        assert r.status == 400 and await r.json() == {"problem": "no good", "status": 400}
        r = await client.get("/v9/mine")  # the router's 405, in the route's envelope too
        assert r.status == 405 and (await r.json())["status"] == 405
        r = await client.post("/v9/theirs")
        assert r.status == 400 and shape(await r.json()) == "openai"
