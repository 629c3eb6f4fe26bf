"""OpenRouter's base path and account endpoints, trailing slashes, app attribution, and CORS.

`/api/v1/*` serves the same API as `/v1/*` (errors too); `/auth/key`, `/credits` and `/generation?id=` answer
in OpenRouter's shapes from the usage store; `HTTP-Referer` / `X-Title` are recorded per request.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from faregate.accounting.attribution import MAX_APP_CHARS, app_attribution
from faregate.accounting.tokens import TokenCounter
from faregate.accounting.usage_log import COLUMNS, UsageLog
from faregate.db import open_db
from faregate.server.app import routes
from tests.conftest import Demo, DemoFactory, edit_routes
from tests.server.accounting_fixtures import ADMIN_KEY, KeyedDemo, chat_body, start_keyed_demo
from tests.server.helpers import ENVELOPE_KEYS, HELLO


@pytest.fixture
async def keyed(routes_copy: Path, counter: TokenCounter, tmp_path: Path) -> AsyncIterator[KeyedDemo]:
    kd, stop = await start_keyed_demo(routes_copy, counter, tmp_path / "store.db")
    try:
        yield kd
    finally:
        await stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def test_the_route_table_generates_every_variant() -> None:
    paths = {(r.method, r.path) for r in routes()}  # what create_app adds
    for prefix in ("/v1", "/api/v1"):
        for method, path in (("POST", "/chat/completions"), ("GET", "/models"), ("GET", "/credits")):
            assert (method, prefix + path) in paths and (method, prefix + path + "/") in paths
    assert ("GET", "/api/v1/auth/key") in paths and ("GET", "/v1/generation") in paths


@pytest.mark.parametrize("base", ["/api/v1", "/v1/", "/api/v1/"])
async def test_openrouter_base_path_and_trailing_slashes(demo: Demo, base: str) -> None:
    """The openai SDK with OpenRouter's base path (and with a trailing slash) works unchanged."""
    async with openai.AsyncOpenAI(base_url=demo.url + base, api_key="x", max_retries=0) as c:
        completion = await c.chat.completions.create(model="auto", messages=HELLO)
        models = await c.models.list()
        with pytest.raises(openai.NotFoundError) as e:
            await c.chat.completions.create(model="no/such-model", messages=HELLO)
    assert completion.choices[0].message.content
    assert models.data
    assert e.value.body is not None and set(e.value.body) >= ENVELOPE_KEYS  # type: ignore[call-overload]


async def test_trailing_slash_on_a_raw_post(demo: Demo, http: aiohttp.ClientSession) -> None:
    body = {"model": "auto", "messages": HELLO}
    async with http.post(demo.url + "/v1/chat/completions/", json=body) as resp:
        assert resp.status == 200
    async with http.post(demo.url + "/api/v1/messages", json={"messages": []}) as resp:
        err = await resp.json()
        assert resp.status == 400 and err["type"] == "error"  # Anthropic's envelope on its path


async def test_app_attribution_in_trace_metrics_and_generation(
    keyed: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    secret, _ = keyed.create_key("apps")
    headers = {
        "Authorization": f"Bearer {secret}",
        "HTTP-Referer": "https://myapp.example/chat",
        "X-Title": "My App",
    }
    async with http.post(keyed.url + "/api/v1/chat/completions", json=chat_body(), headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 200
    plain = {"Authorization": f"Bearer {secret}"}
    async with http.post(keyed.url + "/v1/chat/completions", json=chat_body(), headers=plain) as resp:
        assert resp.status == 200
    rid = body["id"]
    async with http.get(keyed.url + f"/v1/requests/{rid}", headers=plain) as resp:
        trace = await resp.json()
    assert (trace["app"], trace["app_url"]) == ("My App", "https://myapp.example/chat")
    async with http.get(keyed.url + "/api/v1/metrics?app=My%20App", headers=plain) as resp:
        mine = await resp.json()
    async with http.get(keyed.url + "/v1/metrics", headers=plain) as resp:
        every = await resp.json()
    assert (mine["total_requests"], every["total_requests"]) == (1, 2)
    async with http.get(keyed.url + f"/api/v1/generation?id={rid}", headers=plain) as resp:
        gen = (await resp.json())["data"]
    assert gen["id"] == rid and gen["origin"] == "https://myapp.example/chat"
    assert gen["total_cost"] == body["usage"]["cost"]
    assert gen["tokens_prompt"] == body["usage"]["prompt_tokens"]
    assert gen["provider_name"] == body["x-faregate"]["routing"]["provider"]
    assert gen["finish_reason"] == gen["native_finish_reason"] == body["choices"][0]["finish_reason"]
    async with http.get(keyed.url + "/api/v1/generation?id=chatcmpl-nope", headers=plain) as resp:
        assert resp.status == 404
    # a streamed answer's finish reason is recorded too (here a tool call's)
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    streamed = {**chat_body("What is the weather?"), "tools": [tool], "stream": True}
    async with http.post(keyed.url + "/v1/chat/completions", json=streamed, headers=plain) as resp:
        assert resp.status == 200 and "tool_calls" in await resp.text()
        srid = resp.headers["X-Faregate-Request-Id"]
    async with http.get(keyed.url + f"/v1/generation?id={srid}", headers=plain) as resp:
        gen = (await resp.json())["data"]
    assert (gen["streamed"], gen["finish_reason"]) == (True, "tool_calls")


async def test_auth_key_and_credits(keyed: KeyedDemo, http: aiohttp.ClientSession) -> None:
    secret, _ = keyed.create_key("budgeted", budget_usd=5)
    headers = {"Authorization": f"Bearer {secret}"}
    async with http.post(keyed.url + "/v1/chat/completions", json=chat_body(), headers=headers) as resp:
        cost = (await resp.json())["usage"]["cost"]
    async with http.get(keyed.url + "/api/v1/auth/key", headers=headers) as resp:
        data = (await resp.json())["data"]
    assert (data["label"], data["limit"], data["usage"]) == ("budgeted", 5, cost)
    async with http.get(keyed.url + "/api/v1/credits", headers=headers) as resp:
        credits = (await resp.json())["data"]
    assert credits == {"total_credits": 5, "total_usage": cost}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with http.get(keyed.url + "/v1/credits", headers=admin) as resp:
        assert (await resp.json())["data"] == {"total_credits": 5, "total_usage": cost}  # every key's sums
    async with http.get(keyed.url + "/v1/credits") as resp:
        assert resp.status == 401


def test_app_attribution_is_bounded_and_clean() -> None:
    assert app_attribution({"HTTP-Referer": "https://a.example:8443/x"}) == (
        "a.example",
        "https://a.example:8443/x",
    )
    app, _ = app_attribution({"X-Title": "x\x00y\n" + "z" * 1000})
    assert app is not None and len(app) == MAX_APP_CHARS and "\x00" not in app and "\n" not in app
    assert app_attribution({}) == (None, None)


def test_an_older_usage_log_gains_the_app_columns(tmp_path: Path) -> None:
    """A store written before app attribution existed keeps working: the columns are added."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    old = [c for c in COLUMNS if c not in ("app", "app_url")]
    con.execute(f"create table usage ({', '.join(old)}, primary key (id))")
    con.execute(
        "insert into usage (id, created, endpoint, alias, status) values ('r1', 1.0, 'chat', 'auto', 200)"
    )
    con.commit()
    con.close()
    log = UsageLog(open_db(path))
    rec = log.get("r1")
    assert rec is not None and rec.app is None
    assert {"app", "app_url"} <= set(log.db.table("usage").columns_dict)


# --- CORS ------------------------------------------------------------------------------------------------

ORIGIN = "http://127.0.0.1:5173"


async def cors_demo(make_demo: DemoFactory, routes_copy: Path, origins: list[str]) -> Demo:
    edit_routes(routes_copy, lambda doc: doc["server"].update({"cors": {"origins": origins}}))
    return await make_demo()


async def test_no_origin_is_allowed_by_default(demo: Demo, http: aiohttp.ClientSession) -> None:
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    async with http.options(demo.url + "/v1/chat/completions", headers=headers) as resp:
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers
    async with http.get(demo.url + "/v1/models", headers={"Origin": ORIGIN}) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_preflight_and_exposed_headers(
    make_demo: DemoFactory, routes_copy: Path, http: aiohttp.ClientSession
) -> None:
    demo = await cors_demo(make_demo, routes_copy, [ORIGIN])
    headers = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    for path in ("/v1/chat/completions", "/api/v1/chat/completions", "/v1/messages"):
        async with http.options(demo.url + path, headers=headers) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
            assert resp.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    body: dict[str, Any] = {"model": "auto", "messages": HELLO, "stream": True}
    async with http.post(demo.url + "/v1/chat/completions", json=body, headers={"Origin": ORIGIN}) as resp:
        await resp.read()
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "X-Faregate-Request-Id" in resp.headers["Access-Control-Expose-Headers"]
    async with http.post(demo.url + "/v1/chat/completions", json={}, headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 400 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN  # errors too
    async with http.get(demo.url + "/v1/models", headers={"Origin": "http://evil.example"}) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers
