"""The simulator's Responses API, checked with the official `openai` SDK (whose stream state machine refuses
an event sequence that OpenAI would not send): plain and streamed answers, tools, structured output,
`max_output_tokens`, stored responses and `previous_response_id`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pydantic
import pytest

from faregate.simulator import Simulator, run_simulator
from tests.unit.test_simulator import count_tokens, providers

TOOL: Any = {
    "type": "function",
    "name": "lookup",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    "strict": False,
}


@pytest.fixture
async def sdk() -> AsyncIterator[tuple[openai.AsyncOpenAI, Simulator]]:
    sim = Simulator(providers(), count_tokens)
    runner, origin = await run_simulator(sim)
    c = openai.AsyncOpenAI(base_url=sim.base_url(origin, "openai"), api_key="sk-test", max_retries=0)
    yield c, sim
    await c.close()
    await runner.cleanup()


async def test_plain_and_streamed_agree(sdk: tuple[openai.AsyncOpenAI, Simulator]) -> None:
    c, _ = sdk
    plain = await c.responses.create(model="gpt-4o-mini", input="Hello there", instructions="Be brief.")
    assert plain.status == "completed" and "You said: Hello there" in plain.output_text
    assert plain.usage is not None and plain.usage.input_tokens > 0 and plain.usage.output_tokens > 0
    async with c.responses.stream(model="gpt-4o-mini", input="Hello there", instructions="Be brief.") as s:
        events = [e async for e in s]
        final = await s.get_final_response()
    assert final.output_text == plain.output_text
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"


async def test_tool_call_streamed_and_round_trip(sdk: tuple[openai.AsyncOpenAI, Simulator]) -> None:
    c, _ = sdk
    async with c.responses.stream(model="gpt-4o-mini", input="please lookup x", tools=[TOOL]) as s:
        final = await s.get_final_response()
    call = final.output[0]
    assert (
        call.type == "function_call"
        and call.name == "lookup"
        and json.loads(call.arguments) == {"q": "sample"}
    )
    answer = await c.responses.create(
        model="gpt-4o-mini",
        tools=[TOOL],
        input=[
            {"role": "user", "content": "please lookup x"},
            {"type": "function_call", "call_id": call.call_id, "name": "lookup", "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "found it"},
        ],
    )
    assert "Tool result received: found it" in answer.output_text
    with pytest.raises(openai.BadRequestError):
        await c.responses.create(
            model="gpt-4o-mini", input=[{"type": "function_call_output", "call_id": "nope", "output": "x"}]
        )


class Answer(pydantic.BaseModel):
    city: str


async def test_structured_output_and_incomplete(sdk: tuple[openai.AsyncOpenAI, Simulator]) -> None:
    c, _ = sdk
    parsed = await c.responses.parse(model="gpt-4o-mini", input="which city?", text_format=Answer)
    assert isinstance(parsed.output_parsed, Answer)
    cut = await c.responses.create(model="gpt-4o-mini", input="REPLY_TOKENS=300 talk", max_output_tokens=16)
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens" and cut.usage is not None
    assert cut.usage.output_tokens <= 16


async def test_stored_responses(sdk: tuple[openai.AsyncOpenAI, Simulator]) -> None:
    c, _ = sdk
    first = await c.responses.create(model="gpt-4o-mini", input="My name is Ada")
    second = await c.responses.create(model="gpt-4o-mini", input="Who am I?", previous_response_id=first.id)
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens  # history counted
    assert (await c.responses.retrieve(first.id)).output_text == first.output_text
    await c.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await c.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError):
        await c.responses.create(model="gpt-4o-mini", input="again", previous_response_id=first.id)
    unstored = await c.responses.create(model="gpt-4o-mini", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        await c.responses.retrieve(unstored.id)
