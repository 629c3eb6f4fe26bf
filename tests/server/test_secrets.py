"""Provider keys never reach clients, the usage log, traces, sync runs or logs, whatever their shape.

Every provider gets a key no pattern knows (no `sk-`, no `Bearer`), and an upstream that echoes it,
whole and in part, in its 401s, as OpenAI's "Incorrect API key provided: Xk9QmZ2v…" does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from faregate.accounting.tokens import TokenCounter
from faregate.catalog.files import load_catalog_dir
from faregate.db import open_db
from faregate.paths import catalog_dir
from faregate.pipeline.load import load
from faregate.pipeline.runtime import Runtime, Sources
from faregate.secrets import Scrubber
from faregate.server.app import create_app
from faregate.server.options import ServeOptions
from faregate.server.serve import demo_env, demo_simulator
from faregate.simulator import run_simulator
from tests.conftest import DemoFactory, edit_routes

KEY = "Xk9QmZ2vT7pLw3RcN8yB4dHs"  # a shape no pattern knows
ADMIN = "adm1n-Q8z7Y6x5W4v3"
PROVIDERS = load_catalog_dir(catalog_dir())[0].providers
KEYS = {var: KEY for p in PROVIDERS.values() for var in p.api_key_env}


def leaks(text: str) -> bool:
    return KEY[:8] in text or KEY[-8:] in text or "Bearer" in text


async def echo_401(request: web.Request) -> web.Response:
    """Quotes the key it was sent, in part and in whole, in the body (as real upstreams do)."""
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    given = given or request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or ""
    given = given or request.query.get("key", "")
    message = f"Incorrect API key provided: {given[:8]}… (you sent {given}; header Bearer {given})"
    return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=401)


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo_401)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def test_the_scrubber_removes_a_configured_key_in_whole_and_in_part() -> None:
    s = Scrubber([KEY, "sim-key-openrouter"])
    for text in [f"bad key {KEY}!", f"provided: {KEY[:8]}…", f"…{KEY[-9:]}", f"x{KEY}y"]:
        assert not leaks(s.scrub(text)), s.scrub(text)
    assert s.scrub("openrouter: HTTP 401 from groq") == "openrouter: HTTP 401 from groq"  # words stay


async def test_an_echoed_key_reaches_neither_the_client_nor_the_log_nor_the_trace(
    make_demo: DemoFactory, echo: str, caplog: pytest.LogCaptureFixture
) -> None:
    demo = await make_demo(base_urls={name: echo for name in PROVIDERS}, env=KEYS)
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession(demo.url) as http:
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        async with http.post("/v1/chat/completions", json=body) as resp:
            text = await resp.text()
            rid = resp.headers["X-Faregate-Request-Id"]
        assert resp.status == 502 and "Incorrect API key provided" in text, text
        assert not leaks(text), text
        async with http.post("/v1/chat/completions", json={**body, "stream": True}) as resp:
            stream_text = await resp.text()
        assert not leaks(stream_text), stream_text
        async with http.get(f"/v1/requests/{rid}") as resp:
            trace = await resp.text()
        assert resp.status == 200 and "[redacted]" in trace and not leaks(trace), trace
    rec = demo.runtime.recorder.get(rid)
    assert rec is not None and not leaks(json.dumps(rec.as_json(), default=str))
    assert not any(leaks(r.getMessage()) for r in caplog.records)


async def test_catalog_sync_errors_are_scrubbed_in_logs_sync_runs_and_admin_answers(
    routes_copy: Path, tmp_path: Path, counter: TokenCounter, echo: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    edit_routes(routes_copy, lambda doc: doc["catalog"].update(sync_interval_s=0))
    store = tmp_path / "faregate.db"
    sources = Sources(routes_copy, catalog_dir(), {}, store=store)
    sim, names = demo_simulator(sources, counter)
    sim_runner, origin = await run_simulator(sim, "127.0.0.1", 0)
    _, base_urls = demo_env(sources, sim, names, origin)
    runtime, issues = Runtime.from_sources(
        replace(sources, env=KEYS, base_urls={n: echo for n in base_urls}), counter=counter
    )
    assert runtime is not None, issues
    app = create_app(runtime, ServeOptions(watch_interval_s=0, admin_key=ADMIN))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    headers = {"Authorization": f"Bearer {ADMIN}"}
    try:
        async with aiohttp.ClientSession(str(server.make_url(""))) as http:
            async with http.post("/admin/catalog/sync", json={}, headers=headers) as resp:
                answer = await resp.text()
            assert resp.status == 200, answer
            results: list[dict[str, Any]] = json.loads(answer)["results"]
            assert results and all(r["status"] == "failed" for r in results)
            assert "HTTP 401" in answer and not leaks(answer), answer
            async with http.get("/admin/catalog/status", headers=headers) as resp:
                status = await resp.text()
            assert not leaks(status) and ADMIN not in status
    finally:
        await server.close()
        await sim_runner.cleanup()
    rows = [dict(r) for r in open_db(store).query("select * from sync_runs")]
    assert rows and not any(leaks(json.dumps(r, default=str)) for r in rows)
    assert not any(leaks(r.getMessage()) for r in caplog.records)


async def test_a_server_that_loads_its_table_after_opening_its_port_scrubs_the_tables_keys() -> None:
    # `serve` builds its Runtime with no table and installs it once the port is open.
    sources = Sources(Path(__file__).parents[2] / "routes.yaml", catalog_dir(), KEYS)
    loaded = load(sources)[0]
    assert loaded is not None
    rt = Runtime(sources, None)
    rt.add_secrets(ADMIN)
    rt.install(loaded)
    assert not leaks(rt.scrubber.scrub(f"upstream said: bad key {KEY}")), rt.scrubber.scrub(KEY)
    assert ADMIN not in rt.scrubber.scrub(f"admin {ADMIN}")
