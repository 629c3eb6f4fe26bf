"""A demo gateway with a store (keys, limits, usage log) and `auth: keys`, for the accounting tests.

`start_keyed_demo` builds what `start_demo` (tests/conftest.py) builds, plus an `Accounts` on a SQLite
file, so the usage log's batch writer runs in the app's cleanup context as it does under `faregate serve`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from faregate.accounting.keys import ApiKey
from faregate.accounting.tokens import TokenCounter
from faregate.catalog.model import MILLION
from faregate.paths import catalog_dir
from faregate.pipeline.accounts import Accounts
from faregate.pipeline.runtime import Runtime, Sources
from faregate.server.app import create_app
from faregate.server.options import ServeOptions
from faregate.server.serve import demo_env, demo_simulator
from faregate.simulator import run_simulator
from tests.conftest import Demo

ADMIN_KEY = "fg_admin_0123456789abcdef0123456789abcdef"
PINNED = "openai/gpt-6-luna"  # one channel (openai), $0.10 in / $0.50 out per 1M tokens


@dataclass
class KeyedDemo:
    demo: Demo
    accounts: Accounts
    store: Path
    admin_key: str = ADMIN_KEY

    @property
    def url(self) -> str:
        return self.demo.url

    def create_key(self, label: str = "test", **limits: Any) -> tuple[str, ApiKey]:
        return self.accounts.keys.create(label, **limits)

    async def post(
        self,
        session: aiohttp.ClientSession,
        secret: str | None,
        body: dict[str, Any],
        *,
        path: str = "/v1/chat/completions",
        header: str = "bearer",
    ) -> tuple[int, dict[str, str], Any]:
        resp = await session.post(self.url + path, json=body, headers=auth_headers(secret, header))
        async with resp:
            text = await resp.text()
            is_json = resp.content_type == "application/json"
            return resp.status, dict(resp.headers), json.loads(text) if is_json else text

    async def get(
        self, session: aiohttp.ClientSession, secret: str | None, path: str
    ) -> tuple[int, dict[str, str], Any]:
        async with session.get(self.url + path, headers=auth_headers(secret)) as resp:
            return resp.status, dict(resp.headers), await resp.json(content_type=None)


def auth_headers(secret: str | None, header: str = "bearer") -> dict[str, str]:
    if secret is None:
        return {}
    return {"Authorization": f"Bearer {secret}"} if header == "bearer" else {"X-API-Key": secret}


def chat_body(
    text: str = "Hello there", *, model: str = PINNED, max_tokens: int | None = 16
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


async def start_keyed_demo(
    routes_path: Path,
    counter: TokenCounter,
    store: Path,
    *,
    auth: str = "keys",
    admin_key: str | None = ADMIN_KEY,
) -> tuple[KeyedDemo, Callable[[], Awaitable[None]]]:
    sources = Sources(routes_path, catalog_dir(), {})
    sim, names = demo_simulator(sources, counter)
    sim_runner, origin = await run_simulator(sim, "127.0.0.1", 0)
    keys, base_urls = demo_env(sources, sim, names, origin)
    sources = replace(sources, env=keys, base_urls=base_urls)
    accounts = Accounts(store)
    runtime, issues = Runtime.from_sources(sources, counter=counter, simulated=True, accounts=accounts)
    assert runtime is not None, issues
    options = ServeOptions(auth=auth, admin_key=admin_key, watch_interval_s=0)
    server = TestServer(create_app(runtime, options), host="127.0.0.1")
    await server.start_server()

    async def stop() -> None:
        await server.close()  # runs the cleanup contexts: the usage log writes what is pending
        await sim_runner.cleanup()

    return KeyedDemo(Demo(sim, origin, runtime, server, routes_path), accounts, store), stop


def worst_cost(kd: KeyedDemo, model: str, prompt_tokens: int, max_tokens: int) -> Decimal:
    """The budget reservation for a request pinned to `model`: its dearest channel's price at `max_tokens`
    (recomputed here from the price table, not with the gateway's own helper)."""
    table = kd.demo.runtime.holder.current.table
    prices = [c.price for c in table.channels.values() if c.model_id == model and c.api_key]
    return max((p.input * prompt_tokens + p.output * max_tokens) / MILLION for p in prices)
