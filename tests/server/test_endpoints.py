"""`GET /v1/models`, `GET /v1/models/{id}`, the admin endpoints and `/healthz`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import openai
import pytest

from faregate.catalog.model import MILLION
from faregate.routing.table import Channel
from tests.conftest import Demo, DemoFactory
from tests.server.helpers import ENVELOPE_KEYS, HELLO, client

ALIASES = {"auto", "cheap", "smart", "embed"}


@pytest.fixture
async def http(demo: Demo) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(demo.url) as session:
        yield session


@pytest.fixture
async def no_xai(make_demo: DemoFactory) -> Demo:
    """A demo where one provider (xai) has no key: inactive, and says why."""
    return await make_demo(without_keys=["XAI_API_KEY"])


def per_token(price_per_million: Decimal) -> Decimal:
    return price_per_million / MILLION


def check_pricing(entry: dict[str, Any], channels: tuple[Channel, ...]) -> None:
    """OpenRouter's per-token prices as plain decimal strings, equal to the price tables / 1e6 exactly."""
    best = min(channels, key=lambda c: (c.price.input, c.price.output))
    pricing = entry["pricing"]
    assert all(isinstance(v, str) and "e" not in v.lower() for v in pricing.values()), pricing
    assert Decimal(pricing["prompt"]) == per_token(best.price.input)
    assert Decimal(pricing["completion"]) == per_token(best.price.output)
    assert Decimal(pricing["request"]) == 0
    by_channel = {c.id: c for c in channels}
    assert {o["channel"] for o in entry["offerings"]} == set(by_channel)
    for offering in entry["offerings"]:
        ch = by_channel[offering["channel"]]
        assert offering["provider"] == ch.provider and offering["upstream_id"] == ch.upstream_id
        assert Decimal(offering["pricing"]["prompt"]) == per_token(ch.price.input)
        assert Decimal(offering["pricing"]["completion"]) == per_token(ch.price.output)


async def test_models_list_with_the_sdk(demo: Demo) -> None:
    async with client(demo) as c:
        listed = [m async for m in c.models.list()]
    ids = {m.id for m in listed}
    assert ids >= ALIASES
    assert {"openai/gpt-4o-mini", "anthropic/claude-sonnet-5", "google/gemini-2.5-flash-lite"} <= ids
    assert all(m.object == "model" and isinstance(m.created, int) and m.owned_by for m in listed)


async def test_models_list_shape_and_pricing(demo: Demo, http: aiohttp.ClientSession) -> None:
    async with http.get("/v1/models") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["object"] == "list"
    table = demo.runtime.holder.current.table
    entries = {e["id"]: e for e in body["data"]}
    assert len(entries) == len(body["data"])  # no duplicates
    routable = {m for m, chs in table.models.items() if chs}
    assert set(entries) == routable | set(table.aliases)
    for model_id in routable:
        entry = entries[model_id]
        assert entry["object"] == "model" and entry["owned_by"] == model_id.split("/")[0]
        assert entry["name"] and entry["context_length"] == max(c.context for c in table.models[model_id])
        assert isinstance(entry["supported_parameters"], list)
        check_pricing(entry, table.models[model_id])
    for alias in table.aliases:
        assert entries[alias]["owned_by"] == "faregate" and entries[alias]["route"] == table.aliases[alias]
    assert "tools" in entries["openai/gpt-4o-mini"]["supported_parameters"]
    assert demo.sim.received == ()  # the listing is the gateway's own


async def test_models_list_has_only_routable_models(no_xai: Demo) -> None:
    demo = no_xai
    async with client(demo) as c:
        ids = {m.id async for m in c.models.list()}
    assert "openai/gpt-4o-mini" in ids
    assert not any(i.startswith("x-ai/") for i in ids)  # its provider is inactive
    assert "anthropic/claude-3-5-haiku" not in ids  # retired: known, never routed
    assert "deepseek/deepseek-chat" in ids  # served by together, even though deepseek's own API is denied


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/models/openai/gpt-4o-mini", "openai/gpt-4o-mini"),
        ("/v1/models/meta-llama/llama-3.1-8b-instruct", "meta-llama/llama-3.1-8b-instruct"),
        ("/v1/models/gpt-4o-mini", "openai/gpt-4o-mini"),  # a bare upstream id names its model
    ],
)
async def test_model_by_id(demo: Demo, http: aiohttp.ClientSession, path: str, expected: str) -> None:
    async with http.get(path) as resp:
        assert resp.status == 200
        entry = await resp.json()
    assert entry["id"] == expected and entry["object"] == "model"
    check_pricing(entry, demo.runtime.holder.current.table.models[expected])


async def test_model_by_id_with_the_sdk(demo: Demo) -> None:
    """The SDK percent-encodes the slash of a canonical id (`openai%2Fgpt-4o-mini`)."""
    async with client(demo) as c:
        model = await c.models.retrieve("openai/gpt-4o-mini")
        alias = await c.models.retrieve("smart")
    assert model.id == "openai/gpt-4o-mini" and model.owned_by == "openai"
    assert alias.id == "smart" and alias.owned_by == "faregate"


async def test_alias_by_id(demo: Demo, http: aiohttp.ClientSession) -> None:
    async with http.get("/v1/models/smart") as resp:
        assert resp.status == 200
        entry = await resp.json()
    assert entry["id"] == "smart" and entry["alias"] is True and entry["route"] == "smart"
    assert [r["name"] for r in entry["rules"]] == ["smart"]


@pytest.mark.parametrize("model_id", ["acme/nope", "nope", "x-ai/grok-4.5"])
async def test_unknown_model_by_id_is_a_404(no_xai: Demo, model_id: str) -> None:
    async with aiohttp.ClientSession(no_xai.url) as http, http.get(f"/v1/models/{model_id}") as resp:
        assert resp.status == 404
        error = (await resp.json())["error"]
    assert set(error) == ENVELOPE_KEYS
    assert error["code"] == "model_not_found" and error["param"] == "model"
    async with client(no_xai) as c:
        with pytest.raises(openai.NotFoundError):
            await c.models.retrieve(model_id)


async def test_admin_routes_lists_the_table_and_inactive_providers(no_xai: Demo) -> None:
    demo = no_xai
    async with aiohttp.ClientSession(demo.url) as http, http.get("/admin/routes") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["generation"] == 0
    assert "XAI_API_KEY" in body["inactive_providers"]["xai"]
    assert set(body["inactive_providers"]) == {"xai"}
    assert body["aliases"]["auto"] == "default"
    table = demo.runtime.holder.current.table
    rules = {r["name"]: r for r in body["routes"]["default"]}
    assert list(rules) == [r.name for r in table.routes["default"]]
    assert rules["vision"]["when"] == {"has_images": True}
    for rule in table.routes["default"]:
        assert [c["channel"] for c in rules[rule.name]["channels"]] == [c.id for c in rule.channels]
    assert not any(
        c["provider"] == "xai" for rs in body["routes"].values() for r in rs for c in r["channels"]
    )
    assert body["baseline"] == "openai/gpt-4o"


async def test_admin_routes_shows_channel_health(demo: Demo, http: aiohttp.ClientSession) -> None:
    demo.sim.fail("openrouter", 500)
    async with client(demo) as c:
        await c.chat.completions.create(model="auto", messages=HELLO)
    async with http.get("/admin/routes") as resp:
        health = (await resp.json())["health"]
    failed = health["openrouter:meta-llama/llama-3.1-8b-instruct"]
    assert failed["failures"] == 1 and failed["cooldown_s"] > 0


async def test_admin_explain(demo: Demo, http: aiohttp.ClientSession) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "Fix this python traceback"}]}
    async with http.post("/admin/explain", json=body) as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert (doc["route"], doc["rule"]) == ("default", "code")
    assert [r["name"] for r in doc["rules"] if r["matched"]] == ["code", "everything-else"]
    assert [r["name"] for r in doc["rules"] if r["selected"]] == ["code"]
    assert doc["plan"][0]["channel"] == "mistral:codestral-latest"
    assert demo.sim.received == ()  # explaining calls no upstream


async def test_admin_explain_of_a_bad_request(demo: Demo, http: aiohttp.ClientSession) -> None:
    async with http.post("/admin/explain", json={"model": "acme/nope", "messages": HELLO}) as resp:
        assert resp.status == 404
        assert set((await resp.json())["error"]) == ENVELOPE_KEYS
    async with http.post("/admin/explain", data=b"{") as resp:
        assert resp.status == 400


async def test_healthz(demo: Demo, http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok", "generation": 0, "simulated": True}


async def test_supported_parameters_are_what_each_channel_carries(demo: Demo) -> None:
    """Truthful per model: `top_k` only where an Anthropic or Gemini channel takes it, `stop` not for a
    Responses-only model, `reasoning` only for models that reason, `seed`/`n` where an OpenAI-format
    channel forwards them, embedding parameters for an embedding model."""
    async with client(demo) as c:
        raw = await c.get("/models", cast_to=object)
    entries = {e["id"]: e["supported_parameters"] for e in raw["data"] if "supported_parameters" in e}  # type: ignore[index]
    haiku = set(entries["anthropic/claude-haiku-4.5"])  # Anthropic's channel takes top_k and thinking
    assert {"top_k", "stop", "tools", "reasoning"} <= haiku
    mini = set(entries["openai/gpt-4o-mini"])
    assert (
        {"seed", "n", "logprobs", "stop", "tools"} <= mini and "reasoning" not in mini and "top_k" not in mini
    )
    pro = set(entries["openai/gpt-5.5-pro"])  # served only through the Responses API
    assert "stop" not in pro and "reasoning" in pro and "n" not in pro
    assert entries["openai/text-embedding-3-small"] == ["dimensions", "encoding_format", "user"]
    assert all(p == sorted(p) for p in entries.values())
