"""Catalog sync end to end against the provider simulator on 127.0.0.1: listings with paging, the merge into
the running gateway without restart, price history, failures that change nothing, and the scheduler."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from faregate.accounting.tokens import TokenCounter
from faregate.catalog.files import load_catalog_dir
from faregate.catalog.listing.fetch import fetch_listing
from faregate.catalog.model import Price
from faregate.catalog.store import CatalogStore
from faregate.catalog.sync import SyncService, backoff_delay
from faregate.cli import main
from faregate.config.model import Listing
from faregate.db import open_db
from faregate.paths import catalog_dir
from faregate.pipeline.runtime import Runtime, Sources
from faregate.server.app import create_app
from faregate.server.catalog_admin import snapshot_of
from faregate.server.options import ServeOptions
from faregate.server.serve import demo_env, demo_simulator
from faregate.simulator import SimModel, SimProvider, Simulator, run_simulator
from tests.conftest import edit_routes

D = Decimal
HELLO = [{"role": "user", "content": "Hello there"}]
TINY = SimModel("acme/tiny-1", "Acme Tiny 1", "chat", 32_000, D("0.01"), D("0.01"))
QWEN = "Qwen/Qwen3.5-9B"  # together's upstream id of qwen/qwen3.5-9b


@dataclass
class SyncDemo:
    sim: Simulator
    runtime: Runtime
    server: TestServer
    store: Path
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def service(self) -> SyncService:
        assert self.runtime.catalog_sync is not None
        return self.runtime.catalog_sync

    async def sync(self, provider: str | None = None, status: int = 200) -> dict[str, Any]:
        body = {"provider": provider} if provider else None
        async with self.http.post(f"{self.url}/admin/catalog/sync", json=body) as resp:
            assert resp.status == status, await resp.text()
            data: dict[str, Any] = await resp.json()
            return data

    async def chat(self, model: str = "auto", **headers: str) -> tuple[dict[str, Any], Any]:
        async with self.http.post(
            f"{self.url}/v1/chat/completions", json={"model": model, "messages": HELLO}, headers=headers
        ) as resp:
            return await resp.json(loads=_decimal_json), resp

    async def model_ids(self) -> set[str]:
        async with self.http.get(f"{self.url}/v1/models") as resp:
            return {m["id"] for m in (await resp.json())["data"]}

    def catalog_rows(self) -> tuple[list[Any], dict[Any, Price], list[Any]]:
        store = CatalogStore(open_db(self.store))
        try:
            return store.offerings(), store.current_prices(), store.history("together", QWEN)
        finally:
            store.db.close()


def _decimal_json(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def cheapest_default_route(doc: Any) -> None:
    """auto -> one rule taking every chat model with input price <= 0.05 (a new cheap model joins it)."""
    doc["routes"]["default"] = [{"name": "cheap", "use": {"max_input_price": 0.05}}]
    doc["catalog"]["sync_interval_s"] = 0
    doc["server"]["read_timeout_s"] = 0.5


@pytest.fixture
async def sync_demo(routes_copy: Path, tmp_path: Path, counter: TokenCounter) -> AsyncIterator[SyncDemo]:
    edit_routes(routes_copy, cheapest_default_route)
    store = tmp_path / "faregate.db"
    sources = Sources(routes_copy, catalog_dir(), {}, store=store)
    sim, names = demo_simulator(sources, counter)
    sim_runner, origin = await run_simulator(sim, "127.0.0.1", 0)
    keys, base_urls = demo_env(sources, sim, names, origin)
    runtime, issues = Runtime.from_sources(
        replace(sources, env=keys, base_urls=base_urls), counter=counter, simulated=True
    )
    assert runtime is not None, issues
    server = TestServer(create_app(runtime, ServeOptions(watch_interval_s=0)), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        try:
            yield SyncDemo(sim, runtime, server, store, http)
        finally:
            await server.close()
            await sim_runner.cleanup()


def together_models(sim: Simulator, change: Callable[[list[SimModel]], list[SimModel]]) -> None:
    sim.set_models("together", change(list(sim.providers["together"].models)))


# -- listing formats with paging --------------------------------------------------------------------------


def many(prefix: str, n: int, kind: str = "chat") -> tuple[SimModel, ...]:
    return tuple(
        SimModel(f"{prefix}-{i}", f"{prefix} {i}", kind, 1000 * (i + 1), D("0.1") * i, D("0.2") * i)  # type: ignore[arg-type]
        for i in range(n)
    )


@pytest.mark.parametrize(
    ("api", "listing", "pages"),
    [
        ("openai", "openai", 1),
        ("openai", "together", 1),
        ("openai", "openrouter", 1),
        ("openai", "ollama", 1),
        ("anthropic", "anthropic", 3),
        ("gemini", "gemini", 3),
    ],
)
async def test_each_listing_format_with_paging(
    counter: TokenCounter, api: str, listing: Listing, pages: int
) -> None:
    sim = Simulator([SimProvider("p", api, listing, many("m", 5))], counter.count_text)  # type: ignore[arg-type]
    runner, origin = await run_simulator(sim)
    try:
        async with aiohttp.ClientSession() as http:
            got = await fetch_listing(
                http, listing, sim.base_url(origin, "p"), "sk-test", timeout_s=5, page_size=2
            )  # type: ignore[arg-type]
            capped = await fetch_listing(
                http, listing, sim.base_url(origin, "p"), "sk-test", timeout_s=5, page_size=2, max_pages=1
            )  # type: ignore[arg-type]
    finally:
        await runner.cleanup()
    assert [m.upstream_id for m in got.models] == [f"m-{i}" for i in range(5)]
    assert (got.pages, got.complete, got.error) == (pages, True, None)
    assert capped.complete == (pages == 1) and len(capped.models) == (5 if pages == 1 else 2)
    prices = {m.upstream_id: m.price for m in got.models}
    if listing in ("together", "openrouter"):
        assert prices["m-3"] == Price(D("0.3"), D("0.6"))  # published prices, exact
    if listing in ("gemini", "together", "openrouter"):
        assert [m.context for m in got.models] == [1000, 2000, 3000, 4000, 5000]
    received = sim.received_for("p")
    assert len(received) == pages + 1
    if listing != "ollama":
        assert any(h in received[0].headers for h in ("Authorization", "x-api-key", "x-goog-api-key"))


# -- the running gateway ------------------------------------------------------------------------------------


async def test_a_new_model_becomes_listed_and_routable_without_restart(sync_demo: SyncDemo) -> None:
    d = sync_demo
    body, _ = await d.chat()
    assert body["x-faregate"]["routing"]["model"] == "meta-llama/llama-3.1-8b-instruct"
    assert "acme/tiny-1" not in await d.model_ids()
    together_models(d.sim, lambda ms: [*ms, TINY])
    before = d.runtime.holder.current.generation
    result = await d.sync("together")
    (run,) = result["results"]
    assert (run["status"], run["added"], run["listed"]) == ("ok", 1, len(d.sim.providers["together"].models))
    assert {"change": "added", "upstream_id": "acme/tiny-1", "model": "acme/tiny-1"}.items() <= run[
        "changes"
    ][0].items()
    assert result["generation"] == before + 1 and result["reload_errors"] == []
    assert "acme/tiny-1" in await d.model_ids()
    body, resp = await d.chat()
    assert (body["x-faregate"]["routing"]["model"], resp.headers["X-Faregate-Provider"]) == (
        "acme/tiny-1",
        "together",
    )
    # A second sync of an unchanged listing changes nothing and does not reload.
    again = await d.sync("together")
    assert again["results"][0]["added"] == 0 and again["results"][0]["changes"] == []
    assert d.runtime.holder.current.generation == before + 1

    # The model disappears from the listing: retired, not deleted, and no longer routed.
    together_models(d.sim, lambda ms: [m for m in ms if m.upstream_id != "acme/tiny-1"])
    (run,) = (await d.sync("together"))["results"]
    assert run["retired"] == 1 and run["changes"][0]["change"] == "retired"
    body, _ = await d.chat()
    assert body["x-faregate"]["routing"]["model"] == "meta-llama/llama-3.1-8b-instruct"
    assert "acme/tiny-1" not in await d.model_ids()
    assert not any(c.model_id == "acme/tiny-1" for c in d.runtime.holder.current.table.channels.values())
    rows, _, _ = d.catalog_rows()
    assert [r.retired_at is not None for r in rows if r.upstream_id == "acme/tiny-1"] == [True]


async def test_a_price_change_is_recorded_and_used_for_cost_from_then_on(sync_demo: SyncDemo) -> None:
    d = sync_demo
    pin = {"Faregate-Provider": "together"}
    old_body, old_resp = await d.chat("qwen/qwen3.5-9b", **pin)
    usage = old_body["usage"]
    assert (
        usage["cost"] == (D("0.17") * usage["prompt_tokens"] + D("0.25") * usage["completion_tokens"]) / 10**6
    )
    await d.sync("together")  # first observation: history starts, nothing changes
    d.sim.set_price("together", QWEN, D("0.12"), D("0.2"))
    (run,) = (await d.sync("together"))["results"]
    assert run["changed"] == 1
    change = next(c for c in run["changes"] if c["upstream_id"] == QWEN)
    assert (
        change["change"] == "price"
        and '"input": "0.17"' in change["old"]
        and '"input": "0.12"' in change["new"]
    )
    _, current, history = d.catalog_rows()
    assert [(h.price.input, h.price.output) for h in history] == [
        (D("0.17"), D("0.25")),
        (D("0.12"), D("0.2")),
    ]
    assert history[0].valid_to == history[1].valid_from and history[1].valid_to is None
    assert current[("together", QWEN)] == Price(D("0.12"), D("0.2"))
    new_body, _ = await d.chat("qwen/qwen3.5-9b", **pin)
    usage = new_body["usage"]
    assert (
        usage["cost"] == (D("0.12") * usage["prompt_tokens"] + D("0.2") * usage["completion_tokens"]) / 10**6
    )
    old = d.runtime.recorder.get(old_resp.headers["X-Faregate-Request-Id"])
    assert old is not None and old.cost_usd == old_body["usage"]["cost"]  # the old request keeps its cost


@pytest.mark.parametrize("fault", ["500", "timeout", "malformed"])
async def test_a_failed_sync_changes_nothing_and_is_recorded(sync_demo: SyncDemo, fault: str) -> None:
    d = sync_demo
    await d.sync("together")
    together_models(d.sim, lambda ms: [TINY])  # would add one model and retire all the others
    table_before, rows_before = d.runtime.holder.current, d.catalog_rows()
    if fault == "500":
        d.sim.fail("together", 500)
    elif fault == "timeout":
        d.sim.slow("together", 2.0)  # read_timeout_s is 0.5 in this routes.yaml
    else:
        d.sim.malform_listing("together", {"data": "not a list"})
    (run,) = (await d.sync("together"))["results"]
    expected = {"500": "HTTP 500", "timeout": "no answer within 0.5 s", "malformed": "malformed listing"}[
        fault
    ]
    assert run["status"] == "failed" and expected in run["error"] and run["changes"] == []
    assert d.runtime.holder.current is table_before and d.catalog_rows() == rows_before
    async with d.http.get(f"{d.url}/admin/catalog/status") as resp:
        status = await resp.json()
    together = status["providers"]["together"]
    assert together["last_run"]["status"] == "failed" and expected in together["last_run"]["error"]
    assert together["failures"] == 1 and together["next_retry"] is not None
    d.sim.clear("together")


async def test_sync_of_every_provider_and_unknown_provider(sync_demo: SyncDemo) -> None:
    d = sync_demo
    result = await d.sync()
    runs = {r["provider"]: r for r in result["results"]}
    assert {"openai", "anthropic", "google", "openrouter", "together"} <= set(runs)
    assert all(r["status"] == "ok" for r in runs.values()), runs
    assert runs["openai"]["added"] == 0 and runs["openai"]["retired"] == 0  # the simulator lists the catalog
    missing = await d.sync("nope", status=404)
    assert missing["error"]["param"] == "provider"
    async with d.http.get(f"{d.url}/admin/catalog/status") as resp:
        status = await resp.json()
    assert status["scheduled"] is False and status["interval_s"] == 0
    assert status["providers"]["openai"]["last_run"]["status"] == "ok"


async def test_a_listing_cut_short_adds_but_retires_nothing(sync_demo: SyncDemo) -> None:
    d = sync_demo
    d.service.page_size, d.service.max_pages = 1, 1
    anthropic = list(d.sim.providers["anthropic"].models)
    d.sim.set_models(
        "anthropic", [SimModel("claude-new", "Claude New", "chat", 200_000, D(1), D(5)), *anthropic[1:]]
    )
    (run,) = (await d.sync("anthropic"))["results"]
    assert run["status"] == "partial" and "stopped after 1 pages" in run["error"]
    assert run["added"] == 1 and run["retired"] == 0
    assert "anthropic/claude-new" in d.runtime.holder.current.table.known  # known, not priced: not routable
    assert ("anthropic/claude-new", "anthropic") in d.runtime.holder.current.table.unpriced


async def test_a_new_model_with_no_price_anywhere_is_listed_audited_and_never_routed(
    sync_demo: SyncDemo, capsys: pytest.CaptureFixture[str]
) -> None:
    """OpenAI's listing publishes no prices: a model only it lists is known, visible, and not routable."""
    d = sync_demo
    new = SimModel("gpt-7-preview", "GPT-7 Preview", "chat", 400_000, D("0.01"), D("0.01"))
    d.sim.set_models("openai", [*d.sim.providers["openai"].models, new])
    (run,) = (await d.sync("openai"))["results"]
    assert run["status"] == "ok" and run["added"] == 1 and run["unpriced"] == ["openai/gpt-7-preview"]
    assert {"change": "added", "model": "openai/gpt-7-preview", "new": "unpriced"}.items() <= run["changes"][
        0
    ].items()

    async with d.http.get(f"{d.url}/v1/models") as resp:
        listed = {m["id"]: m for m in (await resp.json())["data"]}
    entry = listed["openai/gpt-7-preview"]
    assert entry["pricing"] is None and entry["routable"] is False
    assert "not routable until priced" in entry["not_routable_reason"]
    assert [(o["provider"], o["upstream_id"], o["pricing"]) for o in entry["offerings"]] == [
        ("openai", "gpt-7-preview", None)
    ]
    assert listed["openai/gpt-6-luna"]["routable"] is True  # priced models say so too
    async with d.http.get(f"{d.url}/v1/models/gpt-7-preview") as resp:  # by its bare upstream id too
        assert resp.status == 200
        assert (await resp.json())["pricing"] is None

    # Nothing routes to it: pinned, it is a clear 404; no alias rule picks it up; no upstream sees it.
    d.sim.reset_received()
    for model in ("openai/gpt-7-preview", "gpt-7-preview"):
        body, resp = await d.chat(model)
        assert resp.status == 404, body
        assert body["error"]["code"] == "model_not_priced"
        assert "not routable until priced" in body["error"]["message"]
    body, resp = await d.chat()
    assert resp.status == 200 and body["x-faregate"]["routing"]["model"] != "openai/gpt-7-preview"
    assert not any(b"gpt-7-preview" in (r.body or b"") for r in d.sim.received)
    table = d.runtime.holder.current.table
    assert all(c.model_id != "openai/gpt-7-preview" for c in table.channels.values())

    # `faregate audit` on the same store names it in `unpriced`.
    code = main(
        [
            "audit",
            "--config",
            str(d.runtime.sources.routes),
            "--store",
            str(d.store),
            "--section",
            "unpriced",
            "--json",
        ]
    )
    rows = json.loads(capsys.readouterr().out)["sections"]["unpriced"]["rows"]
    assert {
        "model": "openai/gpt-7-preview",
        "provider": "openai",
        "upstream_id": "gpt-7-preview",
    }.items() <= (next(r for r in rows if r["model"] == "openai/gpt-7-preview").items())
    assert code == 1  # a finding in a section that fails the run by default


# -- the scheduler and backoff -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_interval() -> None:
    assert [backoff_delay(f, 1.0, 10.0) for f in range(6)] == [1, 2, 4, 8, 10, 10]
    assert backoff_delay(20, 60.0, 0) == 60.0 * 2**20  # no interval: only the doubling


async def test_the_scheduler_runs_the_job_on_its_interval(sync_demo: SyncDemo) -> None:
    d = sync_demo
    rt = d.runtime
    base = snapshot_of(rt)

    def fast() -> Any:
        return replace(base(), interval_s=0.2)

    assert rt.catalog_sync is not None
    service = SyncService(d.store, rt.catalog_sync.session, fast, on_change=rt.reload)
    service.start()
    try:
        together_models(d.sim, lambda ms: [*ms, TINY])
        deadline = time.monotonic() + 10
        while "acme/tiny-1" not in rt.holder.current.table.known or service.ticks < 2:
            assert time.monotonic() < deadline, f"{service.ticks} ticks"
            await asyncio.sleep(0.05)
        status = await service.status()
        assert status["scheduled"] and status["next_run"] is not None
    finally:
        await service.stop()
    assert "acme/tiny-1" in await d.model_ids()


async def test_sync_needs_a_store(counter: TokenCounter, routes_copy: Path) -> None:
    rt, _ = Runtime.from_sources(Sources(routes_copy, catalog_dir(), {}), counter=counter)
    assert rt is not None
    server = TestServer(create_app(rt, ServeOptions(watch_interval_s=0)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http, http.post(server.make_url("/admin/catalog/sync")) as resp:
            assert resp.status == 503 and (await resp.json())["error"]["code"] == "catalog_sync_off"
    finally:
        await server.close()


# -- the command line -----------------------------------------------------------------------------------------


async def test_cli_list_diff_and_export_show_what_sync_stored(
    sync_demo: SyncDemo, routes_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = sync_demo
    await d.sync("together")
    together_models(d.sim, lambda ms: [*(m for m in ms if m.upstream_id != "deepseek-ai/DeepSeek-V3"), TINY])
    d.sim.set_price("together", QWEN, D("0.12"), D("0.2"))
    await d.sync("together")
    common = ["--config", str(routes_copy), "--store", str(d.store)]
    capsys.readouterr()

    assert main(["catalog", "list", "--provider", "together", "--json", *common]) == 0
    rows = {r["upstream_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["acme/tiny-1"]["source"] == "sync" and rows["acme/tiny-1"]["input"] == "0.01"
    assert (rows[QWEN]["source"], rows[QWEN]["input"]) == ("synced price", "0.12")
    assert rows["deepseek-ai/DeepSeek-V3"]["status"] == "retired"

    assert main(["catalog", "diff", *common]) == 0
    out = capsys.readouterr().out
    assert "together: run" in out and "+ acme/tiny-1 (acme/tiny-1): added" in out
    assert f"~ qwen/qwen3.5-9b ({QWEN}): price input 0.17 / output 0.25 $/1M -> input 0.12" in out
    assert "- deepseek/deepseek-chat (deepseek-ai/DeepSeek-V3): retired" in out

    out_dir = tmp_path / "exported"
    assert main(["catalog", "export", "--out", str(out_dir), *common]) == 0
    shipped = (catalog_dir() / "together.yaml").read_text()
    written = (out_dir / "together.yaml").read_text()
    assert written.splitlines()[:5] == shipped.splitlines()[:5]  # the header comments are kept
    assert "  acme/tiny-1:\n    id: acme/tiny-1\n    name: Acme Tiny 1\n    input: 0.01\n" in written
    catalog, issues = load_catalog_dir(out_dir)
    assert issues == []
    exported = {o.upstream_id: o for o in catalog.offerings if o.provider == "together"}
    assert exported[QWEN].price == Price(D("0.12"), D("0.2")) and exported["deepseek-ai/DeepSeek-V3"].retired
    assert (out_dir / "openai.yaml").read_text() == (catalog_dir() / "openai.yaml").read_text()  # untouched
    [mark] = [line for line in written.splitlines() if "retired:" in line and "catalog sync" in line]
    today = mark.split('"')[1]
    assert mark.endswith(
        f'retired: "{today}"  # source: https://api.together.xyz/v1/models (gone from the provider\'s listing on '
        f"{today}: faregate catalog sync)"
    ), mark


def test_cli_sync_uses_routes_yaml_base_urls_and_keys_from_the_environment(
    routes_copy: Path,
    tmp_path: Path,
    counter: TokenCounter,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim, _ = demo_simulator(Sources(routes_copy, catalog_dir(), {}), counter)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner, origin = asyncio.run_coroutine_threadsafe(run_simulator(sim), loop).result(10)
    try:
        edit_routes(
            routes_copy,
            lambda doc: doc["providers"]["together"].update(base_url=sim.base_url(origin, "together")),
        )
        for name in list(os.environ):
            if name.endswith("_API_KEY") or (name.startswith("FAREGATE_") and name != "FAREGATE_CACHE_DIR"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("TOGETHER_API_KEY", "sk-together")
        store = tmp_path / "cli.db"
        args = ["catalog", "sync", "--config", str(routes_copy), "--store", str(store)]
        assert main(args) == 0
        assert capsys.readouterr().out.startswith("together: ok, ")  # the only provider with a key
        sim.set_price("together", QWEN, D("0.12"), D("0.2"))
        assert main([*args, "--provider", "together"]) == 0
        assert ", 1 changed," in capsys.readouterr().out
        assert main([*args, "--provider", "openai"]) == 1  # no key here: not synced
        received = sim.received_for("together")
        assert [r.path for r in received] == ["/together/v1/models"] * 2
        assert received[0].headers["Authorization"] == "<redacted>"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
