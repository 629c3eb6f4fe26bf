"""The model's reasoning for google-genai and Responses clients, with the official SDKs against gateway +
simulator: Gemini thought parts (`include_thoughts`) and thought signatures, streaming and not, from a
Gemini channel and passed back to it (the simulated Gemini refuses a signature it did not make); reasoning
items for a Responses client from a Gemini channel; a Gemini client's `thoughtSignature` carrying another
format's signed thinking back to it."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from faregate.canonical import Thought
from faregate.providers.sealed import seal, unseal
from tests.conftest import Demo
from tests.server.helpers import client

GEMINI = "google/gemini-2.5-flash-lite"
THINK = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))


def gem(demo: Demo) -> genai.client.AsyncClient:
    options = types.HttpOptions(base_url=demo.url, timeout=20_000)
    return genai.Client(api_key="x", http_options=options).aio


def gemini_bodies(demo: Demo) -> list[dict[str, Any]]:
    return [r.json() for r in demo.sim.received_for("google") if r.body]


async def test_thought_parts_from_a_gemini_channel_and_back(demo: Demo) -> None:
    resp = await gem(demo).models.generate_content(model=GEMINI, contents="Hello there", config=THINK)
    assert resp.candidates and resp.candidates[0].content and resp.candidates[0].content.parts
    parts = resp.candidates[0].content.parts
    thought, answer = parts
    assert thought.thought is True and "The user said: Hello there" in (thought.text or "")
    assert answer.thought is not True and "You said: Hello there" in (answer.text or "")
    assert answer.thought_signature and answer.thought_signature.startswith(b"simsig")
    assert resp.text is not None and "The user said" not in resp.text  # the SDK's text is the answer's
    assert resp.usage_metadata is not None and resp.usage_metadata.thoughts_token_count
    assert gemini_bodies(demo)[0]["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    history = [
        types.Content(role="user", parts=[types.Part(text="Hello there")]),
        resp.candidates[0].content,
        types.Content(role="user", parts=[types.Part(text="Again")]),
    ]
    again = await gem(demo).models.generate_content(model=GEMINI, contents=history, config=THINK)
    assert again.text is not None and "You said: Again" in again.text
    sent = gemini_bodies(demo)[-1]["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in sent] == [base64.b64encode(answer.thought_signature).decode()]


async def test_streamed_thought_parts(demo: Demo) -> None:
    chunks = [
        c
        async for c in await gem(demo).models.generate_content_stream(
            model=GEMINI, contents="Hello there", config=THINK
        )
    ]
    parts = [
        p
        for c in chunks
        if c.candidates and c.candidates[0].content
        for p in c.candidates[0].content.parts or ()
    ]
    thoughts = [p.text for p in parts if p.thought]
    assert thoughts and "The user said: Hello there" in "".join(t or "" for t in thoughts)
    assert parts.index(next(p for p in parts if p.thought)) == 0  # the thinking comes first
    signed = [p for p in parts if p.thought_signature]
    assert len(signed) == 1 and not signed[0].thought and signed[0].thought_signature.startswith(b"simsig")  # type: ignore[union-attr]
    assert "You said: Hello there" in "".join(p.text or "" for p in parts if not p.thought)


async def test_without_include_thoughts_no_thought_parts(demo: Demo) -> None:
    resp = await gem(demo).models.generate_content(model=GEMINI, contents="Hello there")
    assert resp.candidates and resp.candidates[0].content and resp.candidates[0].content.parts
    assert not any(p.thought for p in resp.candidates[0].content.parts)
    assert "thinkingConfig" not in gemini_bodies(demo)[0].get("generationConfig", {})


async def test_another_formats_signature_never_reaches_gemini(demo: Demo) -> None:
    """A Gemini client's turn carrying another format's sealed thinking: Gemini is not sent it (the
    simulated Gemini, as Gemini does, refuses a signature it did not make)."""
    sealed = base64.b64decode(seal([Thought("thinking", "sig", "anthropic")]))
    history = [
        types.Content(role="user", parts=[types.Part(text="Hello there")]),
        types.Content(role="model", parts=[types.Part(text="Hi", thought_signature=sealed)]),
        types.Content(role="user", parts=[types.Part(text="Again")]),
    ]
    resp = await gem(demo).models.generate_content(model=GEMINI, contents=history)
    assert resp.text is not None and "You said: Again" in resp.text
    assert "thoughtSignature" not in str(gemini_bodies(demo)[-1])
    bad = [
        types.Content(role="user", parts=[types.Part(text="Hello there")]),
        types.Content(role="model", parts=[types.Part(text="Hi", thought_signature=b"not-ours")]),
        types.Content(role="user", parts=[types.Part(text="Again")]),
    ]
    with pytest.raises(errors.ClientError) as caught:  # a Gemini signature that is not one reaches Gemini
        await gem(demo).models.generate_content(model=GEMINI, contents=bad)
    assert "Corrupted thought signature" in str(caught.value)


async def test_a_responses_client_gets_reasoning_items_from_a_gemini_channel(demo: Demo) -> None:
    async with client(demo) as c:
        resp = await c.responses.create(
            model=GEMINI,
            input="Hello there",
            reasoning={"effort": "low", "summary": "auto"},
            include=["reasoning.encrypted_content"],
            store=False,
        )
        reasoning, message = resp.model_dump(exclude_none=True)["output"]
        assert (
            reasoning["type"] == "reasoning"
            and "The user said: Hello there" in reasoning["summary"][0]["text"]
        )
        assert message["type"] == "message" and "You said: Hello there" in resp.output_text
        # Gemini's signature, sealed with its text into faregate's own encrypted_content
        [carried] = unseal(reasoning["encrypted_content"]) or ()
        assert carried.origin == "gemini" and carried.text == reasoning["summary"][0]["text"]
        assert carried.signature and base64.b64decode(carried.signature).startswith(b"simsig")
        again = await c.responses.create(
            model=GEMINI,
            input=[
                {"role": "user", "content": "Hello there"},
                reasoning,
                message,
                {"role": "user", "content": "Again"},
            ],
            reasoning={"effort": "low", "summary": "auto"},
            store=False,
        )
    assert "You said: Again" in again.output_text
    sent = gemini_bodies(demo)[-1]["contents"][1]["parts"]
    assert sent[-1]["thoughtSignature"] == carried.signature


ANTHROPIC = "anthropic/claude-haiku-4.5"
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
THINKING: Any = {"effort": "low", "summary": "auto"}


def anthropic_bodies(demo: Demo) -> list[dict[str, Any]]:
    return [r.json() for r in demo.sim.received_for("anthropic") if r.body]


async def test_responses_reasoning_items_from_an_anthropic_channel(demo: Demo) -> None:
    async with client(demo) as c:
        resp = await c.responses.create(model=ANTHROPIC, input="Hello there", reasoning=THINKING)
        stream = await c.responses.create(
            model=ANTHROPIC, input="Hello there", reasoning=THINKING, stream=True
        )
        events = [ev async for ev in stream]
    reasoning, message = resp.output
    assert reasoning.type == "reasoning" and reasoning.summary and reasoning.summary[0].text
    assert reasoning.encrypted_content is None  # not included
    assert message.type == "message" and "You said: Hello there" in resp.output_text
    assert anthropic_bodies(demo)[0]["thinking"]["type"] == "enabled"
    kinds = [ev.type for ev in events]
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    deltas = kinds.count("response.reasoning_summary_text.delta")
    start = kinds.index("response.output_item.added")
    assert deltas and kinds[start : start + deltas + 5] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * deltas,
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    final: Any = events[-1].response  # type: ignore[union-attr]
    assert [i.type for i in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == reasoning.summary[0].text


@pytest.mark.parametrize("stateless", [False, True], ids=["previous_response_id", "items passed back"])
async def test_a_tool_round_trip_with_anthropic_thinking(demo: Demo, stateless: bool) -> None:
    """Anthropic wants the signed thinking of a tool-use turn back first (the simulator checks the signature
    and the text): from the stored response, or from faregate's encrypted_content given back by the client."""
    ask: Any = [{"role": "user", "content": "Use get_weather for Rome"}]
    include: Any = ["reasoning.encrypted_content"] if stateless else []
    async with client(demo) as c:
        first = await c.responses.create(
            model=ANTHROPIC,
            input=ask,
            tools=[WEATHER],
            reasoning=THINKING,
            include=include,
            store=not stateless,
        )
        reasoning, call = first.output
        assert reasoning.type == "reasoning" and call.type == "function_call"
        assert (reasoning.encrypted_content is not None) is stateless
        result: Any = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}  # type: ignore[union-attr]
        if stateless:
            given = [*ask, *(i.model_dump(exclude_none=True) for i in first.output), result]
            second = await c.responses.create(
                model=ANTHROPIC, input=given, tools=[WEATHER], reasoning=THINKING, store=False
            )
        else:
            second = await c.responses.create(
                model=ANTHROPIC,
                input=[result],
                previous_response_id=first.id,
                tools=[WEATHER],
                reasoning=THINKING,
            )
    assert "Tool result received: sunny" in second.output_text
    turn = anthropic_bodies(demo)[-1]["messages"][1]
    assert turn["role"] == "assistant" and turn["content"][0]["type"] == "thinking"
    assert turn["content"][0]["thinking"] == reasoning.summary[0].text  # type: ignore[union-attr]


async def test_gemini_thoughts_from_an_anthropic_channel_and_back(demo: Demo) -> None:
    decl = types.FunctionDeclaration(
        name="get_weather",
        parameters_json_schema={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[decl])],
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=2048),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    ask = types.Content(role="user", parts=[types.Part(text="Use get_weather for Rome")])
    first = await gem(demo).models.generate_content(model=ANTHROPIC, contents=[ask], config=config)
    assert first.candidates and first.candidates[0].content and first.candidates[0].content.parts
    turn = first.candidates[0].content
    thought, call = turn.parts  # type: ignore[misc]
    assert thought.thought is True and thought.text
    assert call.function_call is not None and call.thought_signature  # Anthropic's signature, sealed
    [sealed] = unseal(base64.b64encode(call.thought_signature).decode()) or ()
    assert sealed.origin == "anthropic" and sealed.text == thought.text
    reply = types.Content(
        role="user",
        parts=[types.Part.from_function_response(name="get_weather", response={"content": "sunny"})],
    )
    second = await gem(demo).models.generate_content(
        model=ANTHROPIC, contents=[ask, turn, reply], config=config
    )
    assert second.text is not None and "Tool result received: sunny" in second.text
    sent = anthropic_bodies(demo)[-1]["messages"][1]["content"]
    assert sent[0]["type"] == "thinking" and sent[0]["thinking"] == thought.text


async def test_responses_stream_helper_accumulates_the_reasoning(demo: Demo) -> None:
    """The SDK's `responses.stream` builds the final response from the events: reasoning item included."""
    async with (
        client(demo) as c,
        c.responses.stream(model=ANTHROPIC, input="Hello there", reasoning=THINKING) as s,
    ):
        summary = "".join([ev.delta async for ev in s if ev.type == "response.reasoning_summary_text.delta"])
        final: Any = await s.get_final_response()
    reasoning, message = final.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == summary and summary
    assert message.type == "message" and "You said: Hello there" in final.output_text
