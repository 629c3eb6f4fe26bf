"""`api: openai-responses` upstreams: a provider, or one offering, whose calls go to `{base_url}/responses`.
Chat completions (openai SDK), messages (anthropic SDK) and Responses clients routed there are translated,
streaming included, tools included; the upstream is asked to store nothing (the gateway keeps state)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest

from faregate.accounting.tokens import TokenCounter
from tests.conftest import Demo, edit_routes, start_demo
from tests.server.helpers import check_accounting, client, decimal_json

MODEL = "openai/gpt-6-luna"  # served by the `openai` provider only
STREAM_LIMIT_S = 10.0
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
A_WEATHER: Any = {"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}


def offering_api(doc: Any) -> None:
    """Only this one offering speaks the Responses API; the rest of the provider stays on chat completions."""
    models = doc.setdefault("models", {})
    models.setdefault(MODEL, {}).setdefault("offerings", {})["openai"] = {"api": "openai-responses"}


def provider_api(doc: Any) -> None:
    doc["providers"]["openai"]["api"] = "openai-responses"


@pytest.fixture(params=[offering_api, provider_api], ids=["offering", "provider"])
async def demo(request: Any, routes_copy: Path, counter: TokenCounter) -> AsyncIterator[Demo]:
    edit_routes(routes_copy, request.param)
    d, stop = await start_demo(routes_copy, counter)
    try:
        yield d
    finally:
        await stop()


def responses_calls(demo: Demo) -> list[dict[str, Any]]:
    return [r.json() for r in demo.sim.received_for("openai") if r.path.endswith("/v1/responses")]


async def test_chat_completions_plain_and_streamed(demo: Demo) -> None:
    assert demo.runtime.holder.current.table.channels["openai:gpt-6-luna"].api == "openai-responses"
    async with client(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
            max_tokens=50,
        )
        stream = await c.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Hello there"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [ch async for ch in stream]
    completion = raw.parse()
    assert "You said: Hello there" in (completion.choices[0].message.content or "")
    check_accounting(demo, decimal_json(raw.text), raw.headers)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert "You said: Hello there" in text and chunks[-1].usage is not None
    first, second = responses_calls(demo)
    assert (
        first["instructions"] == "Be brief." and first["store"] is False and first["max_output_tokens"] == 50
    )
    assert second["stream"] is True


async def test_chat_tool_round_trip(demo: Demo) -> None:
    async with client(demo) as c:
        first = await c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Use get_weather for Rome"}], tools=[WEATHER]
        )
        call = (first.choices[0].message.tool_calls or [])[0]
        assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"  # type: ignore[union-attr]
        stream = await c.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Use get_weather for Rome"}],
            tools=[WEATHER],
            stream=True,
        )
        args = "".join(
            tc.function.arguments or ""
            for ch in [x async for x in stream]
            if ch.choices
            for tc in ch.choices[0].delta.tool_calls or ()
            if tc.function
        )
        assert json.loads(args).keys() == {"city"}
        second = await c.chat.completions.create(
            model=MODEL,
            tools=[WEATHER],
            messages=[
                {"role": "user", "content": "Use get_weather for Rome"},
                {"role": "assistant", "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
                {"role": "tool", "tool_call_id": call.id, "content": "rainy"},
            ],
        )
    assert "Tool result received: rainy" in (second.choices[0].message.content or "")
    sent = responses_calls(demo)[-1]["input"]
    assert [i["type"] for i in sent] == ["message", "function_call", "function_call_output"]


async def test_messages_plain_streamed_and_tools(demo: Demo) -> None:
    async with anthropic.AsyncAnthropic(base_url=demo.url, api_key="x", max_retries=0) as a:
        msg = await a.messages.create(
            model=MODEL,
            max_tokens=100,
            system="Be brief.",
            messages=[{"role": "user", "content": "Hello there"}],
        )
        assert "You said: Hello there" in msg.content[0].text  # type: ignore[union-attr]
        async with a.messages.stream(
            model=MODEL,
            max_tokens=100,
            messages=[{"role": "user", "content": "Use get_weather for Rome"}],
            tools=[A_WEATHER],
        ) as s:
            final = await s.get_final_message()
    assert final.stop_reason == "tool_use"
    tool = next(b for b in final.content if b.type == "tool_use")
    assert tool.name == "get_weather" and set(tool.input) == {"city"}  # type: ignore[arg-type]
    assert responses_calls(demo)[0]["instructions"] == "Be brief."


async def test_messages_tool_round_trip_and_streamed_text(demo: Demo) -> None:
    """The other half of the messages matrix: a tool call not streamed, its `tool_result` sent back, and a
    streamed plain answer."""
    ask: Any = [{"role": "user", "content": "Use get_weather for Rome"}]
    async with anthropic.AsyncAnthropic(base_url=demo.url, api_key="x", max_retries=0) as a:
        first = await a.messages.create(model=MODEL, max_tokens=100, messages=ask, tools=[A_WEATHER])
        assert first.stop_reason == "tool_use"
        tool = next(b for b in first.content if b.type == "tool_use")
        assert tool.name == "get_weather" and set(tool.input) == {"city"}  # type: ignore[arg-type]
        turn: Any = {"role": "assistant", "content": [tool.model_dump()]}
        result: Any = {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "hail"}],
        }
        second = await a.messages.create(
            model=MODEL,
            max_tokens=100,
            tools=[A_WEATHER],
            messages=[*ask, turn, result],
        )
        async with a.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hello there"}]
        ) as s:
            streamed = await s.get_final_message()
    assert "Tool result received: hail" in second.content[0].text  # type: ignore[union-attr]
    assert "You said: Hello there" in streamed.content[0].text  # type: ignore[union-attr]
    calls = responses_calls(demo)
    assert len(calls) == 3 and calls[2]["stream"] is True and "stream" not in calls[0]
    assert [i["type"] for i in calls[1]["input"]] == ["message", "function_call", "function_call_output"]
    assert calls[1]["input"][2] == {"type": "function_call_output", "call_id": tool.id, "output": "hail"}


async def test_responses_client_to_a_responses_upstream(demo: Demo) -> None:
    async with client(demo) as c:
        first = await c.responses.create(model=MODEL, input="My name is Ada", service_tier="flex")
        async with c.responses.stream(model=MODEL, input="Who am I?", previous_response_id=first.id) as s:
            final = await s.get_final_response()
    assert "You said: Who am I" in final.output_text
    one, two = responses_calls(demo)
    assert (
        one["service_tier"] == "flex"
    )  # a Responses field without canonical meaning reaches a Responses upstream
    assert "previous_response_id" not in two and two["store"] is False  # the gateway rebuilt the history
    assert "My name is Ada" in json.dumps(two["input"])


async def test_upstream_drop_and_failure(demo: Demo) -> None:
    demo.sim.drop_stream("openai", after_events=4)
    async with client(demo) as c:
        stream = await c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello there"}], stream=True
        )
        with pytest.raises(Exception) as caught:
            _ = [ch async for ch in stream]
    assert "openai" in str(caught.value)


async def test_a_responses_upstream_dropped_mid_stream_ends_in_response_failed(demo: Demo) -> None:
    """A Responses client streaming from a Responses upstream that drops after its first events gets
    `response.failed` (no fallback once bytes reached it), within a bounded time."""
    demo.sim.drop_stream("openai", after_events=4)
    events: list[Any] = []

    async def consume() -> None:
        async with client(demo) as c:
            stream = await c.responses.create(model=MODEL, input="Hello there", stream=True)
            events.extend([ev async for ev in stream])

    await asyncio.wait_for(consume(), STREAM_LIMIT_S)
    kinds = [ev.type for ev in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
    assert "response.completed" not in kinds
    assert events[-1].response.status == "failed" and "openai" in events[-1].response.error.message
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    assert len(responses_calls(demo)) == 1


async def test_built_in_tools_go_to_the_responses_channel_as_sent(demo: Demo) -> None:
    """`web_search` runs at the provider: the plan keeps only Responses channels, and the tool (and a
    tool_choice naming it) reaches the upstream exactly as the client sent it, beside function tools."""
    search: Any = {"type": "web_search", "search_context_size": "low"}
    choice: Any = {"type": "web_search"}
    fn: Any = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
    async with client(demo) as c:
        raw = await c.responses.with_raw_response.create(
            model="auto", input="Hello there", tools=[search, fn], tool_choice=choice
        )
    body = decimal_json(raw.text)
    assert (
        body["status"] == "completed" and "You said: Hello there" in body["output"][-1]["content"][0]["text"]
    )
    assert body["tools"][0] == search and body["tool_choice"] == {"type": "web_search"}
    routing = body["x-faregate"]["routing"]
    assert routing["channel"] == "openai:gpt-6-luna"
    [sent] = responses_calls(demo)
    assert search in sent["tools"] and [t.get("name") for t in sent["tools"]].count("get_weather") == 1
    assert sent["tool_choice"] == {"type": "web_search"}


async def test_the_catalog_sends_a_responses_only_model_to_responses(
    routes_copy: Path, counter: TokenCounter
) -> None:
    """The shipped catalog marks gpt-5.5-pro `api: openai-responses`: a chat completions client reaches it
    through the upstream's /responses, which the simulator (like OpenAI) is the only place it serves it."""
    d, stop = await start_demo(routes_copy, counter)
    try:
        channel = d.runtime.holder.current.table.channels["openai:gpt-5.5-pro"]
        assert channel.api == "openai-responses"
        async with client(d) as c:
            raw = await c.chat.completions.with_raw_response.create(
                model="openai/gpt-5.5-pro",
                messages=[{"role": "user", "content": "Hello there"}],
                max_tokens=20,
            )
        assert "You said: Hello there" in (raw.parse().choices[0].message.content or "")
        [sent] = [r for r in d.sim.received_for("openai")]
        assert sent.path.endswith("/v1/responses") and sent.json()["model"] == "gpt-5.5-pro"
        async with aiohttp.ClientSession() as http:  # the simulator itself refuses chat completions for it
            url = d.sim.base_url(d.sim_origin, "openai") + "/chat/completions"
            body = {"model": "gpt-5.5-pro", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(url, json=body, headers={"Authorization": "Bearer sk-test"}) as r:
                assert r.status == 404
                assert "only supported in v1/responses" in (await r.json())["error"]["message"]
    finally:
        await stop()
