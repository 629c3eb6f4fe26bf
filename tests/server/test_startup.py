"""Start-up (issue 16): the port opens before the decision table is built. `/healthz` answers at once
(`status: loading`), `/readyz` is 503 until the table is in, and a request that comes early waits for
the table and is answered as usual, never a 5xx. The table's build is held back here by a slow `load`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import faregate.config.build as build_module
import faregate.config.load as config_load
import faregate.pipeline.load as load_module
import faregate.server.serve as serve_module
from faregate.config.load import ConfigIssue
from faregate.paths import catalog_dir, default_routes
from faregate.pipeline.load import load as pipeline_load
from faregate.server.options import ServeOptions
from faregate.server.serve import StartError, serve

HELLO = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Starting:
    url: str
    release: threading.Event  # lets the held-back table build go on
    task: asyncio.Task[None]
    stop: asyncio.Event


@pytest.fixture
async def starting(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., Any]]:
    started: list[Starting] = []

    async def start(load: Callable[..., Any] | None = None) -> Starting:
        release = threading.Event()
        real = load or pipeline_load

        def held_back(*args: Any, **kw: Any) -> Any:
            release.wait(30)
            return real(*args, **kw)

        monkeypatch.setattr(serve_module, "load", held_back)
        port, ready, stop = free_port(), asyncio.Event(), asyncio.Event()
        options = ServeOptions(port=port, watch_interval_s=0)
        task = asyncio.create_task(
            serve(default_routes(), catalog_dir(), options, {}, demo=True, ready=ready, stop=stop)
        )
        await asyncio.wait_for(ready.wait(), 30)  # the port is open
        s = Starting(f"http://127.0.0.1:{port}", release, task, stop)
        started.append(s)
        return s

    yield start
    for s in started:
        s.release.set()
        s.stop.set()
        with contextlib.suppress(StartError):
            await s.task


async def test_healthz_before_the_table_and_an_early_request_waits(starting: Callable[..., Any]) -> None:
    s = await starting()
    async with aiohttp.ClientSession(s.url) as http:
        async with http.get("/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "loading"
        async with http.get("/readyz") as r:
            assert r.status == 503 and (await r.json()) == {"status": "loading"}
        early = asyncio.create_task(http.post("/v1/chat/completions", json=HELLO))
        await asyncio.sleep(0.3)
        assert not early.done()  # waiting for the table, not answered with an error
        s.release.set()
        resp = await asyncio.wait_for(early, 30)
        assert resp.status == 200
        body = await resp.json()
        assert body["choices"][0]["message"]["content"] and body["x-faregate"]["routing"]["provider"]
        resp.release()
        async with http.get("/readyz") as r:
            assert r.status == 200 and (await r.json()) == {"status": "ready", "generation": 0}
        async with http.get("/healthz") as r:
            assert (await r.json()) == {"status": "ok", "generation": 0, "simulated": True}


async def test_a_table_that_cannot_be_built_answers_the_waiting_requests_and_stops(
    starting: Callable[..., Any],
) -> None:
    def broken(*args: Any, **kw: Any) -> Any:
        return None, [ConfigIssue("routes.yaml", 3, 1, "unknown model 'x/y'")], []

    s = await starting(load=broken)
    async with aiohttp.ClientSession(s.url) as http:
        early = asyncio.create_task(http.post("/v1/chat/completions", json=HELLO))
        await asyncio.sleep(0.2)
        s.release.set()
        resp = await asyncio.wait_for(early, 30)
        assert resp.status == 503
        assert "unknown model 'x/y'" in (await resp.json())["error"]["message"]
        resp.release()
    with pytest.raises(StartError, match="unknown model 'x/y'"):
        await asyncio.wait_for(s.task, 30)


async def test_serve_logs_an_unreachable_auto_route_once_at_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A route named `auto` with no alias naming it: `serve` starts, logs `check`'s warning once, and a
    request for `auto` gets a 404 that says why (a request names an alias, never a route)."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "version: 1\nproviders:\n  openai: {api: openai, base_url: https://api.openai.com/v1, api_key_env: "
        "OPENAI_API_KEY}\nroutes:\n  auto:\n    - name: all\n      use: [openai/gpt-4o-mini]\n"
    )
    port, ready, stop = free_port(), asyncio.Event(), asyncio.Event()
    caplog.set_level(logging.WARNING)
    task = asyncio.create_task(
        serve(
            routes,
            catalog_dir(),
            ServeOptions(port=port, watch_interval_s=0),
            {},
            demo=True,
            ready=ready,
            stop=stop,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 30)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            for _ in range(300):
                async with http.get("/readyz") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.05)
            for _ in range(2):  # requests log nothing more
                async with http.post("/v1/chat/completions", json=HELLO) as r:
                    assert r.status == 404
                    message = (await r.json())["error"]["message"]
        assert (
            "'auto' is a route of routes.yaml, but a request names an alias, and no alias names it" in message
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    warned = [rec.getMessage() for rec in caplog.records if "named by no alias" in rec.getMessage()]
    assert warned == [f"{routes}:5:3: warning: route 'auto' is named by no alias, so no request reaches it: "
                      "`auto` (and a request without a model) asks for the alias `auto`, not a route; add "
                      "`aliases: {auto: auto}`"]  # fmt: skip


async def test_a_demo_start_reads_routes_yaml_and_the_catalog_folder_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`serve --demo` reads routes.yaml for its options (the command) and builds the simulator and its
    first table of that reading and of one reading of the catalog folder."""
    reads: list[str] = []

    def counting(real: Callable[..., Any], what: str) -> Callable[..., Any]:
        def read(*args: Any, **kw: Any) -> Any:
            reads.append(what)
            return real(*args, **kw)

        return read

    monkeypatch.setattr(build_module, "load_yaml", counting(config_load.load_yaml, "routes.yaml"))
    for module in (load_module, serve_module):
        monkeypatch.setattr(module, "load_catalog_dir", counting(module.load_catalog_dir, "catalog"))
    command_read = build_module.read_routes(default_routes())  # what `faregate serve` does first
    port, ready, stop = free_port(), asyncio.Event(), asyncio.Event()
    options = ServeOptions(port=port, watch_interval_s=0)
    task = asyncio.create_task(
        serve(
            default_routes(),
            catalog_dir(),
            options,
            {},
            demo=True,
            ready=ready,
            stop=stop,
            routes=command_read,
        )
    )
    try:
        await asyncio.wait_for(ready.wait(), 30)
        async with (
            aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http,
            http.post("/v1/chat/completions", json=HELLO) as r,  # waits for the table
        ):
            assert r.status == 200
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert reads == ["routes.yaml", "catalog"]
