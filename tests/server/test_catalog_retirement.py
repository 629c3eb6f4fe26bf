"""Issue 10: catalog changes never break a running or restarting gateway. A sync against a simulated
listing drops the only model of a rule: the gateway keeps serving, that rule answers 404 `model_retired`
(model, date it left the listing, replacement), an unrelated reload is accepted, a restart on the same
store starts, `/admin/routes` and `faregate check` show the warning, `faregate catalog sync` still
works, and a later sync that lists the model again brings it back."""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from faregate.accounting.tokens import TokenCounter
from faregate.cli import main
from faregate.paths import catalog_dir
from faregate.pipeline.runtime import Runtime, Sources
from faregate.server.app import create_app
from faregate.server.options import ServeOptions
from faregate.server.serve import demo_env, demo_simulator
from faregate.simulator import SimModel, Simulator, run_simulator
from tests.conftest import edit_routes
from tests.processes import GatewayProcess, clean_env

GONE = "qwen/qwen3.5-9b"  # in the shipped catalog at together only
GONE_ID = "Qwen/Qwen3.5-9B"
SUCCESSOR = "qwen/qwen3.6-27b"
ROUTES = f"""\
version: 1
providers:
  together: {{}}
  groq: {{}}
catalog: {{sync_interval_s: 0}}
server: {{read_timeout_s: 5, cooldown_s: 30}}
aliases:
  auto: default
routes:
  default:
    - name: only-gone
      when: {{header: {{x-route: gone}}}}
      use: [{GONE}]
    - name: everything-else
      use: [openai/gpt-oss-120b]
"""
GONE_HEADERS = {"x-route": "gone"}


@dataclass
class World:
    sim: Simulator
    sources: Sources
    routes: Path
    catalog: Path
    store: Path
    listed: tuple[SimModel, ...]  # together's listing as it started


@pytest.fixture
async def world(
    tmp_path: Path, counter: TokenCounter, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    """The simulator and what a gateway is started from. routes.yaml points the providers at the simulator
    itself, so the `faregate catalog sync` command reaches it too; the catalog copy names a replacement."""
    catalog = tmp_path / "catalog"
    shutil.copytree(catalog_dir(), catalog)
    together = catalog / "together.yaml"
    text = together.read_text()
    anchor = f"    id: {GONE_ID}\n"
    assert anchor in text
    together.write_text(text.replace(anchor, f"{anchor}    replacement: {SUCCESSOR}\n"))
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    store = tmp_path / "faregate.db"
    sources = Sources(routes, catalog, {}, store=store)
    sim, names = demo_simulator(sources, counter)
    runner, origin = await run_simulator(sim, "127.0.0.1", 0)
    keys, base_urls = demo_env(sources, sim, names, origin)

    def point_at_simulator(doc: Any) -> None:
        for name in ("together", "groq"):
            doc["providers"][name]["base_url"] = base_urls[name]

    edit_routes(routes, point_at_simulator)
    for var, value in keys.items():
        monkeypatch.setenv(var, value)  # for the `faregate catalog sync` command
    try:
        listed = sim.providers["together"].models
        yield World(sim, Sources(routes, catalog, keys, store=store), routes, catalog, store, listed)
    finally:
        await runner.cleanup()


@dataclass
class Gateway:
    runtime: Runtime
    server: TestServer
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def chat(self, **headers: str) -> tuple[int, dict[str, Any]]:
        body = {"model": "auto", "messages": [{"role": "user", "content": "Hello there"}]}
        async with self.http.post(f"{self.url}/v1/chat/completions", json=body, headers=headers) as r:
            return r.status, await r.json()

    async def call(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        async with self.http.request(method, f"{self.url}{path}") as r:
            return r.status, await r.json()


async def start(w: World, counter: TokenCounter) -> Gateway:
    runtime, issues = Runtime.from_sources(w.sources, counter=counter, simulated=True)
    assert runtime is not None, [str(i) for i in issues]
    server = TestServer(create_app(runtime, ServeOptions(watch_interval_s=0)), host="127.0.0.1")
    await server.start_server()
    return Gateway(runtime, server, aiohttp.ClientSession())


async def stop(g: Gateway) -> None:
    await g.http.close()
    await g.server.close()


def cli(w: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([*args, "--config", str(w.routes), "--catalog", str(w.catalog), "--store", str(w.store)])
    out = capsys.readouterr()
    return code, out.out + out.err


def listing(w: World, with_gone: bool) -> None:
    w.sim.set_models("together", [m for m in w.listed if with_gone or m.upstream_id != GONE_ID])


async def test_a_sync_that_retires_a_rules_only_model_never_breaks_the_gateway(
    world: World, counter: TokenCounter, capsys: pytest.CaptureFixture[str]
) -> None:
    w = world
    g = await start(w, counter)
    try:
        status, body = await g.chat(**GONE_HEADERS)
        assert status == 200 and body["x-faregate"]["routing"]["model"] == GONE

        # 1. The listing stops showing the model; a sync retires it, the running gateway keeps serving.
        listing(w, with_gone=False)
        status, result = await g.call("POST", "/admin/catalog/sync")
        assert status == 200, result
        assert result["reload_errors"] == []
        together = next(r for r in result["results"] if r["provider"] == "together")
        assert {"change": "retired", "upstream_id": GONE_ID}.items() <= together["changes"][0].items()
        assert any("rule 'only-gone'" in x for x in result["warnings"])
        today = datetime.now(UTC).date().isoformat()
        await assert_retired(g, today)

        # 2. An unrelated setting edit: the reload is accepted.
        edit_routes(w.routes, lambda doc: doc["server"].update(cooldown_s=5))
        status, reloaded = await g.call("POST", "/admin/reload")
        assert (status, reloaded["reloaded"]) == (200, True), reloaded
        assert g.runtime.health.cooldown_s == 5
        assert any("only-gone" in x["message"] for x in reloaded["warnings"])
    finally:
        await stop(g)

    # 3. A restart on the same store starts, serves the other rules, and answers the dropped model's 404.
    g = await start(w, counter)
    try:
        await assert_retired(g, today)
        status, table = await g.call("GET", "/admin/routes")
        rule = next(r for r in table["routes"]["default"] if r["name"] == "only-gone")
        assert rule["channels"] == [] and rule["warnings"], rule
        assert "left together's listing on " + today in rule["warnings"][0]
        assert rule["retired"] == [
            {
                "model": GONE,
                "provider": "together",
                "retired_on": today,
                "by": "sync",
                "replacement": SUCCESSOR,
            }
        ]
        assert any("only-gone" in x["message"] for x in table["warnings"])

        # `faregate check` with the same store shows the warning and exits 0 (1 with --strict).
        code, out = cli(w, capsys, "check")
        assert code == 0, out
        assert f"warning: rule 'only-gone': no routable offering of {GONE}" in out
        assert cli(w, capsys, "check", "--strict")[0] == 1
        # `faregate explain` shows it next to the rule, and the 404 the request gets.
        code, out = cli(w, capsys, "explain", "--header", "x-route=gone")
        assert code == 1 and "warning: rule 'only-gone'" in out and "model_retired" in out, out
        # `faregate catalog sync` works even now (it reads the same routes.yaml and store).
        code, out = await asyncio.to_thread(cli, w, capsys, "catalog", "sync", "--provider", "together")
        assert code == 0, out

        # 4. A later sync that lists the model again brings it back.
        listing(w, with_gone=True)
        status, result = await g.call("POST", "/admin/catalog/sync")
        assert status == 200 and result["reload_errors"] == []
        together = next(r for r in result["results"] if r["provider"] == "together")
        assert [c["change"] for c in together["changes"]] == ["returned"]
        status, body = await g.chat(**GONE_HEADERS)
        assert status == 200 and body["x-faregate"]["routing"]["model"] == GONE
        assert not any("only-gone" in x for x in result["warnings"])
        code, out = cli(w, capsys, "check", "--strict")
        assert code == 0, out
    finally:
        await stop(g)


async def assert_retired(g: Gateway, today: str) -> None:
    status, body = await g.chat()
    assert status == 200 and body["x-faregate"]["routing"]["model"] == "openai/gpt-oss-120b"
    status, body = await g.chat(**GONE_HEADERS)
    assert status == 404, body
    assert body == {
        "error": {
            "message": f"The model '{GONE}' is retired: its offering at 'together' left together's listing on "
            f"{today} (catalog sync); its replacement is '{SUCCESSOR}'; rule 'only-gone' of route 'default' "
            "has no other candidate",
            "type": "invalid_request_error",
            "code": "model_retired",
            "param": "model",
        }
    }


async def test_faregate_serve_restarts_on_the_store_a_sync_left_a_rule_without_candidates(
    world: World, counter: TokenCounter, tmp_path: Path
) -> None:
    """The real process: `faregate serve` on the same store starts (it used to exit 1 with `cannot
    start`), logs the warning, serves the other rule through the simulator and answers 404 model_retired."""
    w = world
    g = await start(w, counter)
    try:
        listing(w, with_gone=False)
        assert (await g.call("POST", "/admin/catalog/sync"))[0] == 200
    finally:
        await stop(g)
    args = ["--config", str(w.routes), "--catalog", str(w.catalog), "--store", str(w.store), "--port", "0"]
    gw = GatewayProcess(tmp_path, clean_env(**w.sources.env), args)  # stopped at teardown if it is still up
    url = await gw.ready()
    async with aiohttp.ClientSession() as http:
        body = {"model": "auto", "messages": [{"role": "user", "content": "Hello there"}]}
        async with http.post(f"{url}/v1/chat/completions", json=body) as r:
            assert r.status == 200, await r.text()
        async with http.post(f"{url}/v1/chat/completions", json=body, headers=GONE_HEADERS) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "model_retired"
    gw.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(gw.proc.wait, STOP_S) == 0, gw.output
    text = gw.output
    assert f"WARNING faregate.reload: {w.routes}:" in text and "rule 'only-gone'" in text, text


STOP_S = 10.0
