"""The OpenAI Agents SDK in its default mode (the Responses API) runs a one-tool agent through the gateway
against the simulator: the model calls the tool, the SDK runs it and sends its output back, the model answers.
"""

from __future__ import annotations

import json

import agents
import pytest

from tests.conftest import Demo
from tests.server.helpers import client, upstream_bodies


@pytest.mark.parametrize("model", ["auto", "anthropic/claude-haiku-4.5", "google/gemini-2.5-flash-lite"])
async def test_one_tool_agent(demo: Demo, model: str) -> None:
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return f"sunny and 21C in {city}"

    agents.set_tracing_disabled(True)
    async with client(demo) as gateway:
        agent = agents.Agent(
            name="weather",
            instructions="You answer weather questions with the get_weather tool.",
            tools=[get_weather],
            model=agents.OpenAIResponsesModel(model, gateway),
        )
        result = await agents.Runner.run(agent, "Use get_weather for Paris")
    assert len(calls) == 1
    assert "Tool result received:" in result.final_output and "sunny and 21C" in result.final_output
    last = json.dumps(upstream_bodies(demo)[-1])
    assert "sunny and 21C" in last  # the tool's output went back upstream, translated for that format
    assert len(result.raw_responses) == 2


async def test_one_tool_agent_streamed(demo: Demo) -> None:
    @agents.function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"cloudy in {city}"

    agents.set_tracing_disabled(True)
    async with client(demo) as gateway:
        agent = agents.Agent(
            name="weather", tools=[get_weather], model=agents.OpenAIResponsesModel("auto", gateway)
        )
        result = agents.Runner.run_streamed(agent, "Use get_weather for Oslo")
        kinds = [ev.type async for ev in result.stream_events()]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert "Tool result received:" in result.final_output and "cloudy in" in result.final_output
