"""Streaming chat completions with the `openai` SDK: chunks, the final usage chunk with cost and
`x-faregate`, streamed tool calls, fallback before the first byte, and an upstream drop mid-stream."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from tests.conftest import Demo
from tests.server.helpers import HELLO, check_accounting, client, providers_called
from tests.server.test_chat import WEATHER_TOOL

STREAM_LIMIT_S = 10.0


def exact(value: Any) -> Any:
    """JSON numbers the SDK parsed as floats, back to the decimals they were printed from."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    return value


async def stream(demo: Demo, **kw: Any) -> tuple[list[ChatCompletionChunk], dict[str, str]]:
    """Every chunk of one streamed completion, and the response headers."""
    kw.setdefault("messages", HELLO)
    kw.setdefault("model", "auto")

    async def run() -> tuple[list[ChatCompletionChunk], dict[str, str]]:
        async with client(demo) as c:
            raw = await c.chat.completions.with_raw_response.create(stream=True, **kw)
            return [chunk async for chunk in raw.parse()], dict(raw.headers)

    return await asyncio.wait_for(run(), STREAM_LIMIT_S)


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)


async def test_stream_with_usage_ends_with_cost_and_routing(demo: Demo) -> None:
    chunks, headers = await stream(demo, stream_options={"include_usage": True})
    assert headers["content-type"].startswith("text/event-stream")
    assert "x-faregate-cost" not in headers  # not known before the last chunk
    assert len(chunks) > 3  # forwarded as they came, one word at a time
    assert text_of(chunks).startswith("[simulated ")
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert all(ch.usage is None for ch in body)
    assert body[-1].choices[0].finish_reason == "stop"
    final = exact({"usage": last.usage.model_dump(), "x-faregate": (last.model_extra or {})["x-faregate"]})
    routing = check_accounting(demo, final)
    assert (headers["x-faregate-provider"], headers["x-faregate-model"]) == (
        routing["provider"],
        routing["model"],
    )
    assert headers["x-faregate-request-id"] == final["x-faregate"]["request_id"]
    assert {ch.model for ch in chunks} == {routing["model"]}
    [sent] = [r.json() for r in demo.sim.received]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


async def test_stream_without_include_usage_has_no_usage_chunk(demo: Demo) -> None:
    chunks, _ = await stream(demo)
    assert chunks and all(ch.choices for ch in chunks)  # no empty-choices usage chunk
    assert all(ch.usage is None for ch in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert text_of(chunks)
    [sent] = [r.json() for r in demo.sim.received]
    assert sent["stream_options"] == {"include_usage": True}  # asked upstream anyway: cost is always known


@pytest.mark.parametrize("model", ["auto", "openai/gpt-4o-mini", "anthropic/claude-haiku-4.5"])
async def test_streamed_tool_calls_assemble_into_json(demo: Demo, model: str) -> None:
    ask = [{"role": "user", "content": "Use get_weather for Paris, please."}]
    chunks, _ = await stream(demo, model=model, messages=ask, tools=[WEATHER_TOOL])
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += tc.id or ""
            call["name"] += (tc.function.name or "") if tc.function else ""
            call["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert set(json.loads(calls[0]["arguments"])) == {"city", "celsius"}
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


async def test_stream_falls_back_before_the_first_byte(demo: Demo) -> None:
    demo.sim.fail("openrouter", 500)
    chunks, headers = await stream(demo, stream_options={"include_usage": True})
    assert headers["x-faregate-provider"] == "together"
    assert "[simulated together/" in text_of(chunks)
    routing = (chunks[-1].model_extra or {})["x-faregate"]["routing"]
    assert [(a["provider"], a["status"]) for a in routing["attempts"]] == [
        ("openrouter", 500),
        ("together", 200),
    ]
    assert providers_called(demo) == ["openrouter", "together"]


async def test_an_upstream_drop_mid_stream_ends_with_an_error_event(demo: Demo) -> None:
    demo.sim.drop_stream("openrouter", after_events=3)
    received: list[ChatCompletionChunk] = []

    async def consume() -> None:
        async with client(demo) as c:
            async for chunk in await c.chat.completions.create(
                model="auto", messages=HELLO, stream=True, stream_options={"include_usage": True}
            ):
                received.append(chunk)

    with pytest.raises(openai.APIError) as caught:
        await asyncio.wait_for(consume(), STREAM_LIMIT_S)
    assert received, "the stream had started before the drop"
    assert "openrouter" in caught.value.message
    assert isinstance(caught.value.body, dict) and caught.value.body.get("code") == "upstream_stream_error"
    assert providers_called(demo) == ["openrouter"]  # no fallback once bytes reached the client


async def test_a_stall_mid_stream_ends_within_the_read_timeout(slow_reads: Demo) -> None:
    """The upstream sends its first event, then nothing for longer than `read_timeout_s`."""
    demo = slow_reads
    demo.sim.stream_delay_s = 1.5  # between events, not before the first
    received: list[ChatCompletionChunk] = []

    async def consume() -> None:
        async with client(demo) as c:
            async for chunk in await c.chat.completions.create(model="auto", messages=HELLO, stream=True):
                received.append(chunk)

    with pytest.raises(openai.APIError) as caught:
        await asyncio.wait_for(consume(), STREAM_LIMIT_S)
    assert received, "the stream had started before the stall"
    assert isinstance(caught.value.body, dict) and caught.value.body.get("code") == "upstream_stream_error"
    assert providers_called(demo) == ["openrouter"]
