"""Cross-site requests on an open gateway: what a web page the operator visits can make it do.

A page can send "simple" requests (a `text/plain` or form-encoded POST, no preflight) to any origin, and a
DNS-rebinding page sends them under its own host name. Both are refused before anything runs; allowed
origins (`server.cors`) and the gateway's own origin still work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from faregate.server.crosssite import admin_body_refused, host_allowed, host_name, same_origin
from tests.conftest import Demo, DemoFactory, edit_routes
from tests.server.helpers import ENVELOPE_KEYS, HELLO

EVIL = "http://evil.example"
APP = "http://app.example"
CHAT: dict[str, Any] = {"model": "auto", "messages": HELLO}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def gateway(make_demo: DemoFactory, routes_copy: Path) -> Demo:
    """An open gateway (the default) that allows one browser origin and one extra host name."""
    edit_routes(
        routes_copy,
        lambda doc: doc["server"].update({"cors": {"origins": [APP]}, "allowed_hosts": ["gw.internal"]}),
    )
    return await make_demo()


def port(demo: Demo) -> int:
    return demo.server.port or 0


async def refused(resp: aiohttp.ClientResponse, status: int = 403) -> str:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    if not resp.url.path.endswith("/messages"):  # Anthropic's envelope there, OpenAI's everywhere else
        assert set(body["error"]) == ENVELOPE_KEYS
    assert "X-Faregate-Request-Id" in resp.headers
    assert "Access-Control-Allow-Origin" not in resp.headers
    return str(body["error"]["message"])


async def test_a_cross_origin_text_plain_post_is_refused_and_never_runs(
    gateway: Demo, http: aiohttp.ClientSession
) -> None:
    text_plain = {"Origin": EVIL, "Content-Type": "text/plain;charset=UTF-8"}
    before = len(gateway.sim.received)
    async with http.post(
        gateway.url + "/v1/chat/completions", data=orjson.dumps(CHAT), headers=text_plain
    ) as r:
        assert EVIL in await refused(r)
    generation = gateway.runtime.holder.current.generation
    form = {"Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"}
    for path in ("/admin/reload", "/api/v1/chat/completions", "/v1/messages"):
        async with http.post(gateway.url + path, data=b"a=b", headers=form) as r:
            await refused(r)
    async with http.get(gateway.url + "/v1/models", headers={"Origin": EVIL}) as r:
        await refused(r)
    assert len(gateway.sim.received) == before, "no upstream was called"
    assert gateway.runtime.holder.current.generation == generation, "no reload ran"


async def test_a_foreign_host_is_refused_on_an_open_gateway(
    gateway: Demo, http: aiohttp.ClientSession
) -> None:
    """DNS rebinding: the page's own host name resolves to 127.0.0.1, so the browser calls it same-origin."""
    rebound = f"evil.example:{port(gateway)}"
    headers = {"Host": rebound, "Origin": f"http://{rebound}", "Content-Type": "text/plain"}
    before = len(gateway.sim.received)
    async with http.post(gateway.url + "/v1/chat/completions", data=orjson.dumps(CHAT), headers=headers) as r:
        assert "evil.example" in await refused(r)
    for path in ("/healthz", "/v1/models", "/admin/routes"):
        async with http.get(gateway.url + path, headers={"Host": rebound}) as r:
            await refused(r)
    assert len(gateway.sim.received) == before


async def test_loopback_and_configured_hosts_and_allowed_origins_are_served(
    gateway: Demo, http: aiohttp.ClientSession
) -> None:
    p = port(gateway)
    for host in (f"127.0.0.1:{p}", f"localhost:{p}", f"[::1]:{p}", f"app.localhost:{p}", f"GW.internal:{p}"):
        async with http.get(gateway.url + "/healthz", headers={"Host": host}) as r:
            assert r.status == 200, host
    async with http.post(gateway.url + "/v1/chat/completions", json=CHAT, headers={"Origin": APP}) as r:
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] == APP
    own = f"http://127.0.0.1:{p}"  # the gateway's own pages: same origin
    async with http.post(gateway.url + "/v1/chat/completions", json=CHAT, headers={"Origin": own}) as r:
        assert r.status == 200


async def test_admin_endpoints_refuse_bodies_a_page_can_send_without_preflight(
    gateway: Demo, http: aiohttp.ClientSession
) -> None:
    generation = gateway.runtime.holder.current.generation
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        async with http.post(
            gateway.url + "/admin/reload", data=b"{}", headers={"Content-Type": content_type}
        ) as r:
            assert "application/json" in await refused(r, 415)
    assert gateway.runtime.holder.current.generation == generation
    async with http.post(gateway.url + "/admin/explain", json=CHAT) as r:
        assert r.status == 200
    async with http.post(gateway.url + "/admin/reload") as r:  # no body at all, as `curl -X POST` sends
        assert r.status == 200
    assert gateway.runtime.holder.current.generation == generation + 1


async def test_a_foreign_host_is_served_when_keys_are_required(
    make_demo: DemoFactory, http: aiohttp.ClientSession
) -> None:
    """With `auth: keys` a rebinding page has no key to send: the host check is for open gateways only."""
    from faregate.server.options import ServeOptions

    demo = await make_demo(options=ServeOptions(auth="keys", watch_interval_s=0))
    async with http.get(demo.url + "/healthz", headers={"Host": "gw.example.com"}) as r:
        assert r.status == 200


def test_host_names_and_origins() -> None:
    assert host_name("LocalHost:8080") == "localhost"
    assert host_name("[::1]:8080") == "::1"
    assert host_name("::1") == "::1"
    assert host_name("example.com.") == "example.com"
    assert host_allowed("127.0.0.2:1", ())
    assert host_allowed("a.b.localhost", ())
    assert not host_allowed("localhost.evil.example", ())
    assert not host_allowed("127.0.0.1.nip.io", ())
    assert host_allowed("gw.internal:80", ("gw.internal",))
    assert same_origin("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert same_origin("https://GW.example", "gw.example")
    assert not same_origin("http://127.0.0.1:8081", "127.0.0.1:8080")
    assert not same_origin("null", "127.0.0.1:8080")


def test_admin_bodies() -> None:
    assert admin_body_refused("GET", "text/plain", True) is None
    assert admin_body_refused("POST", None, False) is None
    assert admin_body_refused("POST", "application/json; charset=utf-8", True) is None
    assert admin_body_refused("POST", "application/merge-patch+json", True) is None
    assert admin_body_refused("POST", None, True) is not None
    assert admin_body_refused("POST", "text/plain", False) is not None
    assert admin_body_refused("POST", "application/octet-stream", True) is None  # needs a preflight
