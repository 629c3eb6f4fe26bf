"""The OpenAI Agents SDK in its default mode (the Responses API) runs a one-tool agent through the gateway
against the simulator: the model calls the tool, the SDK runs it and sends its output back, the model answers.
"""

from __future__ import annotations

import json

import agents
import pytest

from tests.conftest import Demo
from tests.server.helpers import client, upstream_bodies


def weather_tool(calls: list[str], weather: str) -> agents.FunctionTool:
    """A `get_weather` tool that notes each city it is asked about."""

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return f"{weather} in {city}"

    return get_weather


@pytest.mark.parametrize("model", ["auto", "anthropic/claude-haiku-4.5", "google/gemini-2.5-flash-lite"])
async def test_one_tool_agent(demo: Demo, model: str) -> None:
    calls: list[str] = []
    get_weather = weather_tool(calls, "sunny and 21C")
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


async def test_one_tool_agent_in_the_sdks_default_mode(demo: Demo) -> None:
    """No model class named: the SDK's own provider, given the gateway as its client, picks the Responses
    API by default (each model call is a `resp_…` response of `POST /v1/responses`)."""
    calls: list[str] = []
    get_weather = weather_tool(calls, "windy")
    agents.set_tracing_disabled(True)
    async with client(demo) as gateway:
        agent = agents.Agent(name="weather", tools=[get_weather], model="auto")
        config = agents.RunConfig(model_provider=agents.OpenAIProvider(openai_client=gateway))
        result = await agents.Runner.run(agent, "Use get_weather for Lima", run_config=config)
    assert len(calls) == 1
    assert "Tool result received:" in result.final_output and "windy in" in result.final_output
    ids = [r.response_id or "" for r in result.raw_responses]
    assert len(ids) == 2 and all(i.startswith("resp_") for i in ids)
    assert "windy in" in json.dumps(upstream_bodies(demo)[-1])
