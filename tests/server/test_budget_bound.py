"""A budget bounds the answer instead of refusing it: a request with no `max_tokens` from a key whose
remaining budget cannot cover the default bound gets `max_tokens` lowered to what the budget affords at the
dearest channel of its plan; 402 only when the prompt and a minimal answer do not fit; a request that set
its own bound is never changed; nothing is ever overspent. The gateway starts from a routes.yaml written
here, with a dear model ($75 in / $150 out per 1M tokens) declared at the simulated openai."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faregate.accounting.budget import MIN_ANSWER_TOKENS
from faregate.accounting.tokens import TokenCounter
from faregate.pipeline.accounts import DEFAULT_MAX_OUTPUT, PROMPT_MARGIN
from tests.server.accounting_fixtures import KeyedDemo, start_keyed_demo

D = Decimal
DEAR = "acme/dear-1"
ROUTES = """\
version: 1
auth: keys
providers:
  openai: {api: openai, base_url: https://api.openai.com/v1, api_key_env: OPENAI_API_KEY, data_collection: deny}
models:
  acme/dear-1:
    offerings:
      openai: {id: dear-1, input: 75, output: 150, context: 200000}
  acme/dearer-1:
    offerings:
      openai: {id: dearer-1, input: 75, output: 300, context: 200000}
aliases:
  auto: default
routes:
  default:
    - name: dear
      use: [acme/dear-1, acme/dearer-1]
      strategy: ordered
"""
LONG = "Please write at length. REPLY_TOKENS=100000"  # the simulator answers until max_tokens stops it
ESSAY = "An essay, please. REPLY_TOKENS=1000"  # a 1000-token answer ($0.15 at $150 per 1M), if it may


@pytest.fixture
async def gw(tmp_path: Path, counter: TokenCounter) -> AsyncIterator[KeyedDemo]:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    kd, stop = await start_keyed_demo(routes, counter, tmp_path / "store.db")
    try:
        yield kd
    finally:
        await stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def body(*, model: str = DEAR, text: str = LONG, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def sent_max_tokens(kd: KeyedDemo) -> list[int | None]:
    out = []
    for r in kd.demo.sim.received_for("openai"):
        sent = r.json()
        assert isinstance(sent, dict)
        out.append(sent.get("max_tokens", sent.get("max_completion_tokens")))
    return out


def recorded_spend(kd: KeyedDemo, key_id: str) -> D:
    kd.accounts.usage.flush()
    return kd.accounts.usage.spend_by_key().get(key_id, D(0))


async def test_a_half_dollar_budget_on_a_dear_model_answers_until_spent_then_402(
    gw: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    budget = D("0.50")
    secret, key = gw.create_key("dear", budget_usd=budget)
    assert (75 * 0 + 150 * DEFAULT_MAX_OUTPUT) / D(1_000_000) > budget  # the default bound does not fit
    statuses: list[int] = []
    lowered: list[int] = []
    for _ in range(40):
        status, headers, answer = await gw.post(http, secret, body(text=ESSAY))
        statuses.append(status)
        spent = recorded_spend(gw, key.id)
        assert spent <= budget, (statuses, spent)
        if status == 402:
            assert answer["error"]["code"] == "insufficient_credits"
            assert f"minimal answer ({MIN_ANSWER_TOKENS} tokens)" in answer["error"]["message"]
            break
        assert status == 200, answer
        info = answer["x-faregate"]["budget"]
        assert info["default_max_tokens"] == DEFAULT_MAX_OUTPUT
        assert MIN_ANSWER_TOKENS <= info["max_tokens"] < DEFAULT_MAX_OUTPUT
        done = answer["usage"]["completion_tokens"]
        assert done == min(1000, info["max_tokens"])
        assert answer["choices"][0]["finish_reason"] == ("stop" if done < info["max_tokens"] else "length")
        lowered.append(info["max_tokens"])
    assert statuses[-1] == 402 and set(statuses[:-1]) == {200} and len(statuses) >= 4, statuses
    assert lowered[-1] < 1000  # the last answer was cut to what was left, rather than refused
    assert sent_max_tokens(gw) == lowered  # what went upstream is what x-faregate said
    assert lowered == sorted(lowered, reverse=True)  # each answer takes what is left
    spent = recorded_spend(gw, key.id)
    assert spent <= budget
    assert gw.accounts.limits.reserved_usd[key.id] == 0
    # What is left cannot buy the prompt and 16 tokens at the dearest channel ($75 in, $300 out): that is why.
    _, _, trace = await gw.get(http, gw.admin_key, f"/v1/requests/{headers['X-Faregate-Request-Id']}")
    prompt = trace["features"]["prompt_tokens"]
    prompt_bound = prompt + prompt // PROMPT_MARGIN
    assert budget - spent < (75 * prompt_bound + 300 * MIN_ANSWER_TOKENS) / D(1_000_000)
    # ...and a 402 is repeatable, and nothing more reached the upstream.
    assert (await gw.post(http, secret, body(text=ESSAY)))[0] == 402
    assert len(sent_max_tokens(gw)) == len(lowered)
    assert recorded_spend(gw, key.id) == spent
    _, _, info = await gw.get(http, secret, "/v1/key")
    assert D(json.dumps(info["data"]["usage"])) == spent


async def test_the_dearest_channel_of_the_plan_sets_the_bound(
    gw: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    budget = D("0.30")
    secret, _ = gw.create_key("dearest", budget_usd=budget)
    status, headers, answer = await gw.post(http, secret, body(model="auto", text="Hello there"))
    assert status == 200, answer
    n = answer["x-faregate"]["budget"]["max_tokens"]
    _, _, trace = await gw.get(http, gw.admin_key, f"/v1/requests/{headers['X-Faregate-Request-Id']}")
    prompt: int = trace["features"]["prompt_tokens"]
    prompt_bound = prompt + prompt // PROMPT_MARGIN

    def worst(m: int) -> D:  # at acme/dearer-1's price, the dearest of the plan
        return (75 * prompt_bound + 300 * m) / D(1_000_000)

    assert worst(n) <= budget < worst(n + 1)  # the largest answer the fallback channel could bill
    assert answer["x-faregate"]["routing"]["model"] == DEAR  # served by the first, cheaper channel


async def test_a_request_that_sets_its_own_bound_is_never_changed(
    gw: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    secret, key = gw.create_key("own-bound", budget_usd=D("0.10"))  # affords about 660 answer tokens
    for own in ({"max_tokens": 1000}, {"max_completion_tokens": 1000}):
        status, _, answer = await gw.post(http, secret, {**body(), **own})
        assert status == 402, answer  # refused, not lowered: the client asked for this bound
        assert "send a smaller max_tokens" in answer["error"]["message"]
    anthropic = {"model": DEAR, "max_tokens": 1000, "messages": [{"role": "user", "content": LONG}]}
    status, _, answer = await gw.post(http, secret, anthropic, path="/v1/messages")
    assert status == 402 and answer["error"]["type"] == "billing_error"
    assert not gw.demo.sim.received_for("openai")
    for own in ({"max_tokens": 200}, {"max_completion_tokens": 200}):
        status, _, answer = await gw.post(http, secret, {**body(), **own})
        assert status == 200, answer
        assert "budget" not in answer["x-faregate"]
        assert answer["usage"]["completion_tokens"] == 200
    anthropic["max_tokens"] = 20
    status, _, answer = await gw.post(http, secret, anthropic, path="/v1/messages")
    assert status == 200, answer
    assert sent_max_tokens(gw) == [200, 200, 20]  # sent exactly as asked
    assert recorded_spend(gw, key.id) <= D("0.10")


async def test_a_budget_that_covers_the_default_bound_changes_nothing(
    gw: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    secret, _ = gw.create_key("rich", budget_usd=D("100"))
    status, _, answer = await gw.post(http, secret, body(text="Hello there"))
    assert status == 200 and "budget" not in answer["x-faregate"]
    assert sent_max_tokens(gw) == [DEFAULT_MAX_OUTPUT]  # every answer of a budgeted key has a bound
    unlimited, _ = gw.create_key("unlimited")
    status, _, answer = await gw.post(http, unlimited, body(text="Hello there"))
    assert status == 200 and sent_max_tokens(gw)[-1] is None  # no budget: nothing is added


async def test_streaming_reports_the_lowered_bound_in_the_final_chunk(
    gw: KeyedDemo, http: aiohttp.ClientSession
) -> None:
    secret, key = gw.create_key("stream", budget_usd=D("0.10"))
    req = body(stream=True, stream_options={"include_usage": True})
    async with http.post(gw.url + "/v1/chat/completions", json=req, headers={"X-API-Key": secret}) as resp:
        assert resp.status == 200
        text = await resp.text()
    chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    final = [c for c in chunks if "x-faregate" in c]
    assert final, text
    n = final[-1]["x-faregate"]["budget"]["max_tokens"]
    assert sent_max_tokens(gw) == [n]
    assert recorded_spend(gw, key.id) <= D("0.10")
