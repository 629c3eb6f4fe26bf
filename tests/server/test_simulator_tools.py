"""The simulator's tool heuristic (README "The simulator and tools"): with `tool_choice: auto` a prompt that
mentions a word of a tool's name or description gets a call of that tool, in every wire format the simulator
speaks, so agents can be tried against `faregate serve --demo`; once the tool has answered, the model does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest

from faregate.accounting.tokens import TokenCounter
from faregate.simulator.behaviour import ToolSpec, mentioned_tool, tool_words, words
from tests.conftest import Demo, edit_routes, start_demo
from tests.server.translation_helpers import ALL_UPSTREAMS, oai, responses_upstream

SCHEMA: Final[dict[str, Any]] = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
TOOLS: Final[Any] = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather now", "parameters": SCHEMA},
    },
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Find pages in the product manual",
            "parameters": SCHEMA,
        },
    },
]


@pytest.fixture
async def demo(routes_copy: Path, counter: TokenCounter) -> AsyncIterator[Demo]:
    edit_routes(routes_copy, responses_upstream)
    d, stop = await start_demo(routes_copy, counter)
    try:
        yield d
    finally:
        await stop()


def test_the_words_a_tool_is_mentioned_by() -> None:
    assert words("getWeather for São-Paulo") == ["get", "weather", "for", "são", "paulo"]
    spec = ToolSpec("lookupOrder_v2", {}, "Look up a customer's order by its number, with the tool")
    assert tool_words(spec) == {"lookup", "order", "look", "customer", "number"}
    weather, docs = ToolSpec("get_weather", {}), ToolSpec("search_docs", {}, "Find pages in the manual")
    assert mentioned_tool((docs, weather), "What's the WEATHER in Oslo?") is weather
    assert mentioned_tool((weather, docs), "Is there a manual?") is docs
    assert mentioned_tool((weather, docs), "use search_docs for the weather") is docs  # named in full first
    assert mentioned_tool((weather, docs), "Hello there, how are you?") is None
    assert mentioned_tool((weather, docs), "weathering the storm") is None  # whole words only
    assert mentioned_tool((weather, docs), "get me the pages with this") is docs  # `get`: too short


@pytest.mark.parametrize("api", tuple(ALL_UPSTREAMS))
async def test_a_prompt_that_mentions_a_tool_gets_a_call_in_every_format(demo: Demo, api: str) -> None:
    up = ALL_UPSTREAMS[api]
    async with oai(demo) as c:
        by_description = await c.chat.completions.create(
            model=up.model, messages=[{"role": "user", "content": "Is there a manual for it?"}], tools=TOOLS
        )
        by_name = await c.chat.completions.create(
            model=up.model,
            messages=[{"role": "user", "content": "How is the weather?"}],
            tools=TOOLS,
            tool_choice="auto",
        )
        plain = await c.chat.completions.create(
            model=up.model, messages=[{"role": "user", "content": "Hello there"}], tools=TOOLS
        )
    calls = by_description.choices[0].message.tool_calls
    assert calls and calls[0].type == "function" and calls[0].function.name == "search_docs"
    assert by_description.choices[0].finish_reason == "tool_calls"
    calls = by_name.choices[0].message.tool_calls
    assert calls and calls[0].type == "function" and calls[0].function.name == "get_weather"
    assert not plain.choices[0].message.tool_calls and plain.choices[0].message.content

    # the agent's next turn: the tool's answer, then the model's
    call = calls[0]
    assert call.type == "function"
    messages: Any = [
        {"role": "user", "content": "How is the weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny"},
    ]
    async with oai(demo) as c:
        final = await c.chat.completions.create(model=up.model, messages=messages, tools=TOOLS)
    assert final.choices[0].finish_reason == "stop" and "Sunny" in (final.choices[0].message.content or "")
