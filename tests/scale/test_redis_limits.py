"""The Redis state against the real Redis: atomic admission across two clients (two instances), the
budget's lowered answer bound, settlement, and what happens while Redis is unreachable."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from faregate.accounting.budget import MIN_ANSWER_TOKENS, AnswerBound
from faregate.accounting.keys import ApiKey
from faregate.accounting.limits import Limits
from faregate.catalog.model import Price
from faregate.errors import InsufficientCredits, RateLimited
from faregate.routing.health import Health
from faregate.state.base import StateUnavailable
from faregate.state.open import SharedState, open_state
from tests.scale.redis_proxy import CuttableProxy

PRICE = Price(Decimal("1"), Decimal("2"))  # USD per 1M tokens


def bound(max_tokens: int = 1000, adjustable: bool = False) -> AnswerBound:
    return AnswerBound(prompt_tokens=1000, prices=(PRICE,), max_tokens=max_tokens, adjustable=adjustable)


def key(**limits: object) -> ApiKey:
    import secrets

    return ApiKey(id="key_" + secrets.token_hex(6), label="t", hint="fg_x", **limits)  # type: ignore[arg-type]


async def two(url: str) -> tuple[SharedState, SharedState]:
    """Two instances' states on one Redis (each its own client, its own process-local Limits)."""
    return open_state(url, Limits(), Health()), open_state(url, Limits(), Health())


async def close(*states: SharedState) -> None:
    for s in states:
        await s.stop()


async def test_rpm_is_exact_across_two_instances(redis_url: str) -> None:
    a, b = await two(redis_url)
    k = key(rpm=5)
    admitted, limited = 0, []
    for i in range(12):
        state = (a, b)[i % 2]
        try:
            await state.limits.admit(k, time.monotonic(), prompt_tokens=0, bound=bound())
            admitted += 1
        except RateLimited as e:
            limited.append(int(e.headers["Retry-After"]))
    assert admitted == 5
    assert len(limited) == 7 and all(1 <= s <= 61 for s in limited)
    await close(a, b)


async def test_tpm_counts_prompt_and_completion_tokens(redis_url: str) -> None:
    a, b = await two(redis_url)
    k = key(tpm=3000)
    t = await a.limits.admit(k, 0.0, prompt_tokens=1000, bound=bound())
    a.limits.settle(t, 0.0, cost_usd=Decimal(0), completion_tokens=1500)
    await a.limits.drain()
    await b.limits.admit(k, 0.0, prompt_tokens=400, bound=bound())  # 2900 of 3000
    with pytest.raises(RateLimited, match="3000 tokens per minute"):
        await a.limits.admit(k, 0.0, prompt_tokens=200, bound=bound())
    with pytest.raises(RateLimited, match="exceed the key's 3000"):
        await b.limits.admit(k, 0.0, prompt_tokens=4000, bound=bound())
    await close(a, b)


async def test_fifty_concurrent_admissions_never_overspend(redis_url: str) -> None:
    a, b = await two(redis_url)
    worst = bound().worst_usd()  # $0.003
    k = key(budget_usd=worst * 10 + worst / 2)  # room for 10 reservations, not 11

    async def one(i: int) -> bool:
        state = (a, b)[i % 2]
        try:
            t = await state.limits.admit(k, 0.0, prompt_tokens=1000, bound=bound())
        except InsufficientCredits:
            return False
        await asyncio.sleep(0)
        state.limits.settle(t, 0.0, cost_usd=worst, completion_tokens=1000)  # the worst case, each
        return True

    results = await asyncio.gather(*(one(i) for i in range(50)))
    await a.limits.drain()
    await b.limits.drain()
    assert sum(results) == 10
    assert await a.limits.spent_usd(k.id) == worst * 10 == await b.limits.spent_usd(k.id)
    await close(a, b)


async def test_budget_lowers_the_answer_bound_atomically(redis_url: str) -> None:
    a, b = await two(redis_url)
    k = key(budget_usd=Decimal("0.003"))  # the prompt costs $0.001: 1000 answer tokens are left
    t = await a.limits.admit(k, 0.0, prompt_tokens=1000, bound=bound(4096, adjustable=True))
    assert t.max_tokens == 1000 and t.reserved_usd == Decimal("0.003") and t.left_usd == Decimal("0.003")
    with pytest.raises(InsufficientCredits, match=f"minimal answer \\({MIN_ANSWER_TOKENS} tokens\\)"):
        await b.limits.admit(k, 0.0, prompt_tokens=1000, bound=bound(4096, adjustable=True))
    a.limits.settle(t, 0.0, cost_usd=Decimal("0.0011"), completion_tokens=50)  # the reservation is released
    await a.limits.drain()
    again = await b.limits.admit(k, 0.0, prompt_tokens=1000, bound=bound(4096, adjustable=True))
    assert again.max_tokens == 450
    await close(a, b)


async def test_spent_is_seeded_from_the_store_once(redis_url: str) -> None:
    k = key(budget_usd=Decimal("1"))
    a = open_state(redis_url, Limits(spent_usd={k.id: Decimal("0.999")}), Health())
    b = open_state(redis_url, Limits(spent_usd={k.id: Decimal("0")}), Health())  # a stale view loses
    await a.limits.admit(k, 0.0, prompt_tokens=0, bound=bound(0))
    assert await b.limits.spent_usd(k.id) == Decimal("0.999")
    with pytest.raises(InsufficientCredits):
        await b.limits.admit(k, 0.0, prompt_tokens=1000, bound=bound())
    await close(a, b)


async def test_unreachable_redis_fails_closed_for_budgets_open_for_rates_and_recovers(redis_url: str) -> None:
    proxy = CuttableProxy()
    await proxy.start()
    url = redis_url.replace("127.0.0.1:6379", f"127.0.0.1:{proxy.port}")
    state = open_state(url, Limits(), Health())
    assert state.reach is not None
    budgeted, limited = key(budget_usd=Decimal("1")), key(rpm=2)
    t = await state.limits.admit(budgeted, 0.0, prompt_tokens=10, bound=bound(10))
    assert state.reach.up
    await proxy.cut()
    with pytest.raises(StateUnavailable) as refused:
        await state.limits.admit(budgeted, 0.0, prompt_tokens=10, bound=bound(10))
    assert refused.value.status == 503 and "Retry-After" in refused.value.headers
    assert not state.reach.up and state.reach.errors >= 1
    state.limits.settle(t, 0.0, cost_usd=Decimal("0.25"), completion_tokens=5)  # kept for later
    await state.limits.drain()
    # Rate limits: this process's own windows, still enforced.
    await state.limits.admit(limited, 1.0, prompt_tokens=0, bound=bound(0))
    await state.limits.admit(limited, 1.0, prompt_tokens=0, bound=bound(0))
    with pytest.raises(RateLimited):
        await state.limits.admit(limited, 1.0, prompt_tokens=0, bound=bound(0))
    assert state.reach.degraded == 3  # the refused one included
    metrics = {m.name: m.samples[0].value for m in state.collector().collect()}  # type: ignore[union-attr]
    assert metrics["faregate_state_up"] == 0
    # Redis comes back on the same address: the next probe (at most a second later) succeeds.
    await proxy.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            await state.limits.admit(budgeted, 0.0, prompt_tokens=10, bound=bound(10))
            break
        except StateUnavailable:
            assert time.monotonic() < deadline, "did not recover"
            await asyncio.sleep(0.2)
    assert state.reach.up
    await state.limits.drain()
    assert await state.limits.spent_usd(budgeted.id) == Decimal("0.25")  # the kept settlement was written
    await close(state)
    await proxy.cut()


async def test_a_channel_cooled_on_one_instance_is_cooled_on_the_other(redis_url: str) -> None:
    ha, hb = Health(cooldown_s=30), Health(cooldown_s=30)
    a, b = open_state(redis_url, Limits(), ha), open_state(redis_url, Limits(), hb)
    await a.start()
    await b.start()
    await b.health_sync.sync_once()  # type: ignore[union-attr]
    ha.failed("openai:gpt-x", time.monotonic())
    deadline = time.monotonic() + 30
    while not hb.cooling("openai:gpt-x", time.monotonic()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert 20 < hb.cooldown_left_s("openai:gpt-x", time.monotonic()) <= 30
    ha.succeeded("openai:gpt-x", 120.0)  # recovered on A: cleared on B too, and its latency shared
    while hb.cooling("openai:gpt-x", time.monotonic()) or hb.latency_ms("openai:gpt-x") is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert hb.latency_ms("openai:gpt-x") == pytest.approx(120.0)
    await close(a, b)
