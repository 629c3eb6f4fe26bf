"""Walking the plan: 500/429/timeouts move to the next channel, a 400 is returned as is, failed channels
cool down, and a plan with nothing left ends in 502/503/504 with the attempts in the message.

The `auto` route's `everything-else` rule starts with openrouter, then together (see `test_chat.py`).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import openai
import pytest

from faregate.routing.table import Channel
from tests.conftest import Demo, DemoFactory
from tests.server.helpers import (
    ENVELOPE_KEYS,
    HELLO,
    check_accounting,
    client,
    decimal_json,
    providers_called,
)

FIRST, SECOND = "openrouter", "together"


async def routed(demo: Demo, **kw: Any) -> dict[str, Any]:
    kw.setdefault("model", "auto")
    async with client(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(messages=HELLO, **kw)
    return check_accounting(demo, decimal_json(raw.text), raw.headers)


def _everything_else(demo: Demo) -> tuple[Channel, ...]:
    return next(
        r for r in demo.runtime.holder.current.table.routes["default"] if r.name == "everything-else"
    ).channels


def outcomes(routing: dict[str, Any]) -> list[tuple[str, int | None, str]]:
    return [(a["provider"], a["status"], a["outcome"]) for a in routing["attempts"]]


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_retryable_status_moves_to_the_next_channel(demo: Demo, status: int) -> None:
    demo.sim.fail(FIRST, status)
    routing = await routed(demo)
    assert routing["provider"] == SECOND
    assert outcomes(routing)[0][:2] == (FIRST, status)
    assert outcomes(routing)[1] == (SECOND, 200, "ok")
    assert providers_called(demo) == [FIRST, SECOND]


async def test_a_timeout_moves_to_the_next_channel(slow_reads: Demo) -> None:
    demo = slow_reads
    demo.sim.hang(FIRST)
    routing = await routed(demo)
    assert routing["provider"] == SECOND
    assert outcomes(routing) == [(FIRST, None, "timeout"), (SECOND, 200, "ok")]


async def test_a_connect_error_moves_to_the_next_channel(make_demo: DemoFactory) -> None:
    """The first provider points at a bound port that does not listen: the connection is refused."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        demo = await make_demo(base_urls={FIRST: f"http://127.0.0.1:{port}/api/v1"})
        routing = await routed(demo)
    assert routing["provider"] == SECOND
    assert outcomes(routing)[0] == (FIRST, None, "connect")
    assert providers_called(demo) == [SECOND]


async def test_a_request_error_is_returned_not_retried(demo: Demo) -> None:
    demo.sim.fail(FIRST, 400)
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="auto", messages=HELLO)
    err = caught.value
    assert err.status_code == 400
    envelope = err.response.json()["error"]
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["type"] == "invalid_request_error"
    assert FIRST in envelope["message"]
    assert providers_called(demo) == [FIRST]  # one upstream request, no fallback


async def test_a_failed_channel_cools_down_then_comes_back(make_demo: DemoFactory) -> None:
    demo = await make_demo(cooldown_s=0.3)
    demo.sim.fail(FIRST, 500, times=1)
    assert (await routed(demo))["provider"] == SECOND
    demo.sim.reset_received()

    cooling = await routed(demo)
    # Without its cheapest channel (openrouter's, cooling), Llama 3.1 8B costs more at together than
    # gpt-oss-20b does at groq: the rule's models are sorted again, and groq comes first.
    assert cooling["provider"] == "groq"
    assert providers_called(demo) == ["groq"]  # the cooling channel was not even tried
    assert outcomes(cooling) == [("groq", 200, "ok")]
    demo.sim.reset_received()

    await asyncio.sleep(0.4)  # past the cooldown
    assert (await routed(demo))["provider"] == FIRST
    assert providers_called(demo) == [FIRST]


async def test_no_fallback_when_the_request_forbids_it(demo: Demo) -> None:
    demo.sim.fail(FIRST, 500)
    async with client(demo) as c:
        with pytest.raises(openai.InternalServerError) as caught:
            await c.chat.completions.create(
                model="auto", messages=HELLO, extra_body={"provider": {"allow_fallbacks": False}}
            )
    assert caught.value.status_code == 502
    assert providers_called(demo) == [FIRST]


async def test_every_channel_failing_is_a_502_with_the_attempts(demo: Demo) -> None:
    for provider in demo.sim.providers:
        demo.sim.fail(provider, 500)
    plan = _everything_else(demo)
    async with client(demo) as c:
        with pytest.raises(openai.InternalServerError) as caught:
            await c.chat.completions.create(model="auto", messages=HELLO)
    err = caught.value
    assert err.status_code == 502
    envelope = err.response.json()["error"]
    assert set(envelope) == ENVELOPE_KEYS
    assert envelope["code"] == "all_channels_failed"
    for ch in plan:
        assert ch.id in envelope["message"]
    assert providers_called(demo) == [ch.provider for ch in plan]
    assert err.response.headers["X-Faregate-Request-Id"]


async def test_every_channel_timing_out_is_a_504(slow_reads: Demo) -> None:
    demo = slow_reads
    demo.sim.hang("openai")
    demo.sim.hang("openrouter")
    async with client(demo) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            await c.chat.completions.create(model="openai/gpt-4o-mini", messages=HELLO)
    err = caught.value
    assert err.status_code == 504
    message = err.response.json()["error"]["message"]
    assert "timed out" in message
    assert "openai:gpt-4o-mini" in message and "openrouter:openai/gpt-4o-mini" in message


async def test_every_channel_cooling_down_is_a_503_with_retry_after(demo: Demo) -> None:
    demo.sim.fail("openai", 500)
    demo.sim.fail("openrouter", 500)
    async with client(demo) as c:
        with pytest.raises(openai.InternalServerError):
            await c.chat.completions.create(model="openai/gpt-4o-mini", messages=HELLO)
        demo.sim.clear()
        demo.sim.reset_received()
        with pytest.raises(openai.InternalServerError) as caught:
            await c.chat.completions.create(model="openai/gpt-4o-mini", messages=HELLO)
    err = caught.value
    assert err.status_code == 503
    assert set(err.response.json()["error"]) == ENVELOPE_KEYS
    retry_after = int(err.response.headers["Retry-After"])
    assert 1 <= retry_after <= demo.runtime.health.cooldown_s
    assert demo.sim.received == ()  # nothing was tried
