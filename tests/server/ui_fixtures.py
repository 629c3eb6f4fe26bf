"""A keyed demo with a store for the dashboard's tests, and a browser-like client (cookie jar, forms)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from faregate.accounting.tokens import TokenCounter
from faregate.paths import catalog_dir
from faregate.pipeline.accounts import Accounts
from faregate.pipeline.runtime import Runtime, Sources
from faregate.server.app import create_app
from faregate.server.options import ServeOptions
from faregate.server.serve import demo_env, demo_simulator
from faregate.simulator import run_simulator
from tests.conftest import Demo
from tests.server.accounting_fixtures import ADMIN_KEY, KeyedDemo, chat_body

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def start_ui_demo(
    routes_path: Path, counter: TokenCounter, store: Path, *, admin_key: str | None = ADMIN_KEY
) -> tuple[KeyedDemo, Callable[[], Awaitable[None]]]:
    """What `faregate serve --demo --store FILE` builds, with `auth: keys`: the store holds keys, the usage
    log and the synced catalog (so the sync button and price history work)."""
    sources = Sources(routes_path, catalog_dir(), {}, store=store)
    sim, names = demo_simulator(sources, counter)
    sim_runner, origin = await run_simulator(sim, "127.0.0.1", 0)
    keys, base_urls = demo_env(sources, sim, names, origin)
    sources = replace(sources, env=keys, base_urls=base_urls)
    accounts = Accounts(store)
    runtime, issues = Runtime.from_sources(sources, counter=counter, simulated=True, accounts=accounts)
    assert runtime is not None, issues
    options = ServeOptions(auth="keys", admin_key=admin_key, watch_interval_s=0)
    server = TestServer(create_app(runtime, options), host="127.0.0.1")
    await server.start_server()

    async def stop() -> None:
        await server.close()
        await sim_runner.cleanup()

    return KeyedDemo(Demo(sim, origin, runtime, server, routes_path), accounts, store), stop


@pytest.fixture
async def ui(routes_copy: Path, counter: TokenCounter, tmp_path: Path) -> AsyncIterator[KeyedDemo]:
    kd, stop = await start_ui_demo(routes_copy, counter, tmp_path / "store.db")
    try:
        yield kd
    finally:
        await stop()


class Browser:
    """An aiohttp session that keeps cookies for 127.0.0.1 and reads CSRF tokens from pages."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **kw: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.get(self.url + path, **kw) as resp:
            text = await resp.text()
            found = CSRF.search(text)
            if found:
                self.csrf = found.group(1)
            return resp.status, text, resp

    async def post(
        self, path: str, data: dict[str, str], *, csrf: bool = True, **kw: Any
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        form = {**data, "csrf": self.csrf} if csrf else data
        async with self.session.post(self.url + path, data=form, **kw) as resp:
            text = await resp.text()
            found = CSRF.search(text)
            if found:
                self.csrf = found.group(1)
            return resp.status, text, resp

    async def login(self, key: str) -> tuple[int, str, aiohttp.ClientResponse]:
        return await self.post("/ui/login", {"key": key}, csrf=False)


async def send(kd: KeyedDemo, secret: str | None, n: int = 1, **body: Any) -> list[str]:
    """`n` chat requests through the gateway; their request ids."""
    ids = []
    async with aiohttp.ClientSession() as s:
        for i in range(n):
            status, headers, _ = await kd.post(s, secret, {**chat_body(f"hello {i}"), **body})
            assert status == 200, status
            ids.append(headers["X-Faregate-Request-Id"])
    return ids
