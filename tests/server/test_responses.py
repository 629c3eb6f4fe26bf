"""`POST /v1/responses` and the stored responses, with the official `openai` SDK against the gateway and the
simulator: any upstream format serves a Responses client, streaming included, and `previous_response_id`
continues a conversation on any of them.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest

from tests.conftest import Demo, DemoFactory, edit_routes
from tests.server.helpers import (
    assert_no_routing_fields,
    client,
    decimal_json,
    exact_cost,
    providers_called,
    upstream_bodies,
)

ANTHROPIC = "anthropic/claude-haiku-4.5"
GEMINI = "google/gemini-2.5-flash-lite"
OPENAI = "openai/gpt-6-luna"
STREAM_LIMIT_S = 10.0
# An earlier assistant turn given back as an output message (typed loosely: the SDK's unions confuse mypy).
ASSISTANT_OK: Any = {
    "type": "message",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "ok"}],
}
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def check_response_accounting(demo: Demo, body: dict[str, Any]) -> dict[str, Any]:
    """usage.cost and x-faregate agree with the channel's price, as on chat."""
    table = demo.runtime.holder.current.table
    xf = body["x-faregate"]
    ch = table.channels[xf["routing"]["channel"]]
    usage = body["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    cost = exact_cost(
        ch.price, {"prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"]}
    )
    assert usage["cost"] == cost
    assert xf["savings"]["actual_cost"] == cost
    return dict(xf["routing"])


async def test_string_input(demo: Demo) -> None:
    async with client(demo) as c:
        raw = await c.responses.with_raw_response.create(model="auto", input="Hello there")
    resp = raw.parse()
    assert resp.id.startswith("resp_") and resp.object == "response" and resp.status == "completed"
    assert "[simulated " in resp.output_text and "You said: Hello there" in resp.output_text
    assert resp.output[0].type == "message" and resp.output[0].content[0].type == "output_text"
    assert resp.usage is not None and resp.usage.input_tokens > 0
    body = decimal_json(raw.text)
    routing = check_response_accounting(demo, body)
    assert raw.headers["X-Faregate-Provider"] == routing["provider"]
    assert Decimal(raw.headers["X-Faregate-Cost"]) == body["usage"]["cost"]


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC, GEMINI])
async def test_items_and_instructions_on_every_format(demo: Demo, model: str) -> None:
    async with client(demo) as c:
        resp = await c.responses.create(
            model=model,
            instructions="Answer briefly.",
            input=[
                {"role": "user", "content": "first question"},
                ASSISTANT_OK,
                {"role": "user", "content": [{"type": "input_text", "text": "second question"}]},
            ],
        )
    assert "You said: second question" in resp.output_text
    assert resp.instructions == "Answer briefly."
    body = upstream_bodies(demo)[-1]
    assert "Answer briefly." in json.dumps(body)  # instructions reached the upstream as its system text
    assert "first question" in json.dumps(body)


async def test_stream_text(demo: Demo) -> None:
    async with client(demo) as c, c.responses.stream(model="auto", input="Hello there") as stream:
        events = [ev async for ev in stream]
        final = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for needed in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert needed in kinds
    seqs = [e.sequence_number for e in events]
    assert seqs == list(range(len(seqs)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text and "You said: Hello there" in deltas
    assert final.usage is not None and final.usage.output_tokens > 0
    assert (final.model_extra or {})["x-faregate"]["routing"]["provider"]


async def test_stream_has_event_lines_and_no_done(demo: Demo) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as s,
        s.post(demo.base_url + "/responses", json={"model": "auto", "input": "hi", "stream": True}) as r,
    ):
        text = await r.text()
    frames = [f for f in text.split("\n\n") if f.strip()]
    assert all(f.startswith("event: ") for f in frames)
    assert "[DONE]" not in text
    for f in frames:
        name = f.split("\n")[0].removeprefix("event: ")
        data = json.loads(f.split("\n", 1)[1].removeprefix("data: "))
        assert data["type"] == name


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC, GEMINI])
async def test_stream_function_call(demo: Demo, model: str) -> None:
    async with (
        client(demo) as c,
        c.responses.stream(model=model, input="Use get_weather for Paris", tools=[WEATHER]) as stream,
    ):
        events = [ev async for ev in stream]
        final = await stream.get_final_response()
    calls = [o for o in final.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments).keys() == {"city"}
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC, GEMINI])
async def test_tool_round_trip(demo: Demo, model: str) -> None:
    async with client(demo) as c:
        first = await c.responses.create(
            model=model, input="Use get_weather for Paris", tools=[WEATHER], store=False
        )
        call = next(o for o in first.output if o.type == "function_call")
        second = await c.responses.create(
            model=model,
            tools=[WEATHER],
            store=False,
            input=[
                {"role": "user", "content": "Use get_weather for Paris"},
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                },
                {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
            ],
        )
    assert "Tool result received:" in second.output_text and "sunny, 21C" in second.output_text


class Weather(pydantic.BaseModel):
    city: str
    temperature: int


# Anthropic has no native json_schema: its adapter asks in the system prompt, which the simulator cannot obey.
@pytest.mark.parametrize("model", [OPENAI, GEMINI])
async def test_parse_json_schema(demo: Demo, model: str) -> None:
    async with client(demo) as c:
        resp = await c.responses.parse(model=model, input="The weather in Paris", text_format=Weather)
    assert isinstance(resp.output_parsed, Weather)


@pytest.mark.parametrize("model", [ANTHROPIC, GEMINI])
async def test_previous_response_id_continues_on_any_upstream(demo: Demo, model: str) -> None:
    async with client(demo) as c:
        first = await c.responses.create(model=model, input="My name is Ada", instructions="Be kind.")
        second = await c.responses.create(
            model=model, input="What is my name?", previous_response_id=first.id
        )
    assert second.previous_response_id == first.id
    body = json.dumps(upstream_bodies(demo)[-1])
    assert "My name is Ada" in body and first.output_text in body and "What is my name?" in body
    assert "Be kind." not in body  # instructions are not carried over, as on OpenAI
    assert "You said: What is my name" in second.output_text


async def test_store_false_keeps_nothing(demo: Demo) -> None:
    async with client(demo) as c:
        resp = await c.responses.create(model="auto", input="hi", store=False)
        assert (resp.model_extra or {}).get("store", getattr(resp, "store", None)) is False
        with pytest.raises(openai.NotFoundError):
            await c.responses.retrieve(resp.id)
        with pytest.raises(openai.BadRequestError) as caught:
            await c.responses.create(model="auto", input="again", previous_response_id=resp.id)
    assert caught.value.code == "previous_response_not_found"


@pytest.mark.parametrize("stream", [False, True])
async def test_store_false_leaves_no_row(demo: Demo, stream: bool) -> None:
    """Nothing of a `store: false` response is written to the store, plain or streamed (a stored one, the
    control, is)."""
    rows = demo.runtime.responses.db["responses"]
    resp: Any
    async with client(demo) as c:
        if stream:
            async with c.responses.stream(model="auto", input="forget me", store=False) as s:
                resp = await s.get_final_response()
        else:
            resp = await c.responses.create(model="auto", input="forget me", store=False)
        assert rows.count == 0
        kept = await c.responses.create(model="auto", input="keep me")
    assert [r["id"] for r in rows.rows] == [kept.id] and resp.id != kept.id
    assert "forget me" not in json.dumps(list(rows.rows))


async def test_retrieve_delete_and_input_items(demo: Demo) -> None:
    async with client(demo) as c:
        resp = await c.responses.create(model="auto", input="hi there")
        got = await c.responses.retrieve(resp.id)
        assert got.id == resp.id and got.output_text == resp.output_text
        items = await c.responses.input_items.list(resp.id)
        assert [i.type for i in items.data] == ["message"]
        assert items.data[0].content[0].text == "hi there"  # type: ignore[union-attr,index]
        await c.responses.delete(resp.id)
        with pytest.raises(openai.NotFoundError):
            await c.responses.retrieve(resp.id)
        with pytest.raises(openai.NotFoundError):
            await c.responses.delete(resp.id)


async def test_stored_stream_is_retrievable_at_once(demo: Demo) -> None:
    async with client(demo) as c:
        async with c.responses.stream(model="auto", input="Hello there") as stream:
            final = await stream.get_final_response()
        got = await c.responses.retrieve(final.id)
    assert got.output_text == final.output_text and got.status == "completed"


async def test_max_output_tokens_gives_incomplete(demo: Demo) -> None:
    async with client(demo) as c:
        resp = await c.responses.create(model="auto", input="REPLY_TOKENS=200 go on", max_output_tokens=16)
        assert resp.status == "incomplete"
        assert resp.incomplete_details is not None and resp.incomplete_details.reason == "max_output_tokens"
        async with c.responses.stream(
            model="auto", input="REPLY_TOKENS=200 go on", max_output_tokens=16
        ) as s:
            events = [e async for e in s]
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True])
async def test_fallback_on_5xx_before_the_first_byte(demo: Demo, stream: bool) -> None:
    demo.sim.fail("openrouter", 500)
    resp: Any
    async with client(demo) as c:
        if stream:
            async with c.responses.stream(model="auto", input="Hello there") as s:
                resp = await s.get_final_response()
        else:
            resp = await c.responses.create(model="auto", input="Hello there")
    attempts = (resp.model_extra or {})["x-faregate"]["routing"]["attempts"]
    assert [a["status"] for a in attempts] == [500, 200] and attempts[0]["provider"] == "openrouter"
    assert f"[simulated {attempts[1]['provider']}/" in resp.output_text  # the next channel of the plan


async def test_drop_mid_stream_ends_in_a_failure_event(demo: Demo) -> None:
    demo.sim.drop_stream("openrouter", after_events=3)
    events: list[Any] = []

    async def consume() -> None:
        async with client(demo) as c, c.responses.stream(model="auto", input="Hello there") as s:
            async for ev in s:
                events.append(ev)

    await asyncio.wait_for(consume(), STREAM_LIMIT_S)
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert "openrouter" in events[-1].response.error.message
    assert providers_called(demo) == ["openrouter"]


async def test_built_in_tools_without_a_responses_channel_are_a_clear_400(demo: Demo) -> None:
    """The demo has no `api: openai-responses` channel: no upstream could run `web_search`."""
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.responses.create(model="auto", input="hi", tools=[{"type": "web_search"}])
    assert caught.value.code == "no_capable_channel"
    assert "built-in tools need an api: openai-responses channel" in caught.value.message
    assert not upstream_bodies(demo)


async def test_a_tool_without_a_type_is_a_400(demo: Demo) -> None:
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.responses.create(model="auto", input="hi", tools=[{"name": "x"}])  # type: ignore[list-item]
    assert caught.value.param == "tools[0].type"
    assert not upstream_bodies(demo)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "input"),
        ({"input": 3}, "input"),
        ({"input": [{"type": "bogus"}]}, "input[0].type"),
        ({"input": "hi", "temperature": 3}, "temperature"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": "hi", "background": True}, "background"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ],
)
async def test_bad_requests_never_reach_an_upstream(demo: Demo, body: dict[str, Any], param: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.post(demo.base_url + "/responses", json=body) as r:
        assert r.status == 400
        err = (await r.json())["error"]
    assert set(err) == {"message", "type", "code", "param"} and err["param"] == param
    assert not upstream_bodies(demo)


# --- truncation: "auto" is the middle-out transform --------------------------------------------------


def long_input(turns: int = 40) -> list[Any]:
    words = " ".join(f"word{i}" for i in range(60))  # about 150 tokens a turn
    items: list[Any] = []
    for i in range(turns):
        role = "user" if i % 2 == 0 else "assistant"
        items.append({"type": "message", "role": role, "content": f"turn {i}: {words}"})
    items.append({"type": "message", "role": "user", "content": "And the last question?"})
    return items


async def test_truncation_auto_drops_middle_items_to_fit(small_context: Demo) -> None:
    demo, items = small_context, long_input()
    only_openai = {"provider": {"only": ["openai"]}}
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError) as e:
            await c.responses.create(model="openai/gpt-4o-mini", input=items, extra_body=only_openai)
        assert "context 3000" in str(e.value)
        assert not upstream_bodies(demo)  # never reaches an upstream
        raw = await c.responses.with_raw_response.create(
            model="openai/gpt-4o-mini",
            input=items,
            instructions="Be brief.",
            truncation="auto",
            max_output_tokens=100,
            extra_body=only_openai,
        )
    body = decimal_json(raw.text)
    assert body["status"] == "completed" and body["truncation"] == "auto"
    [note] = body["x-faregate"]["routing"]["transforms"]
    assert note["transform"] == "middle-out" and note["removed_messages"] > 0
    sent = upstream_bodies(demo)[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}  # instructions kept
    assert sent[-1]["content"] == "And the last question?"  # the newest turn kept
    assert len(sent) == len(items) + 1 - note["removed_messages"]
    assert body["usage"]["input_tokens"] + 100 <= 3000


# --- routed like chat ----------------------------------------------------------------------------------


async def test_headers_and_preferences_route_a_responses_request(demo: Demo) -> None:
    """`Faregate-Model` wins over the body, `provider.only` narrows, `models` falls back when the first model's
    channels fail; faregate's routing fields never reach the upstream."""
    async with client(demo) as c:
        pinned = await c.responses.with_raw_response.create(
            model="auto", input="hi", extra_headers={"Faregate-Model": ANTHROPIC}
        )
        only = await c.responses.with_raw_response.create(
            model="auto", input="hi", extra_body={"provider": {"only": ["google"]}}
        )
        demo.sim.fail("anthropic", 500)
        demo.sim.fail("openrouter", 500)  # which serves claude-haiku-4.5 too
        fallback = await c.responses.with_raw_response.create(
            model=ANTHROPIC, input="hi", extra_body={"models": [GEMINI]}
        )
    assert pinned.headers["X-Faregate-Model"] == ANTHROPIC
    assert only.headers["X-Faregate-Provider"] == "google"
    assert fallback.headers["X-Faregate-Model"] == GEMINI
    attempts = decimal_json(fallback.text)["x-faregate"]["routing"]["attempts"]
    assert [a["status"] for a in attempts[:-1]] == [500] * (len(attempts) - 1) and attempts[-1][
        "status"
    ] == 200
    assert {a["provider"] for a in attempts[:-1]} == {"anthropic", "openrouter"}
    assert_no_routing_fields(demo)


@pytest.mark.parametrize(
    ("model", "control"),
    [
        (OPENAI, lambda body: body["reasoning_effort"]),
        (ANTHROPIC, lambda body: body["thinking"]["budget_tokens"]),
        (GEMINI, lambda body: body["generationConfig"]["thinkingConfig"]["thinkingBudget"]),
    ],
    ids=["openai", "anthropic", "gemini"],
)
async def test_reasoning_effort_reaches_each_upstreams_control(demo: Demo, model: str, control: Any) -> None:
    async with client(demo) as c:
        for effort in ("low", "high"):
            resp = await c.responses.create(
                model=model, input="Hello there", reasoning={"effort": effort}, max_output_tokens=30000
            )
            assert resp.status == "completed"
    low, high = (control(body) for body in upstream_bodies(demo))
    assert low != high
    if isinstance(low, int):
        assert 0 < low < high
    else:
        assert (low, high) == ("low", "high")


async def test_a_streamed_response_reports_cost_and_savings_as_a_plain_one(demo: Demo) -> None:
    """The final `response.completed` carries `usage.cost` and the `x-faregate` block, priced as on chat."""
    import aiohttp

    body = {"model": "auto", "input": "Hello there", "stream": True}
    async with aiohttp.ClientSession() as s, s.post(demo.base_url + "/responses", json=body) as r:
        text = await r.text()
        headers = r.headers
    last = [f for f in text.split("\n\n") if f.strip()][-1]
    assert last.startswith("event: response.completed\n")
    final = decimal_json(last.split("\n", 1)[1].removeprefix("data: "))["response"]
    routing = check_response_accounting(demo, final)
    assert routing["provider"] == headers["X-Faregate-Provider"]
    savings = final["x-faregate"]["savings"]
    assert savings["amount_saved"] == savings["alternative_cost"] - savings["actual_cost"]


async def test_request_fields_reach_a_chat_completions_upstream(demo: Demo) -> None:
    """`tool_choice`, `parallel_tool_calls`, `text.format` json_object, sampling and `user` in chat's names;
    `metadata` echoed in the response object, as on OpenAI."""
    async with client(demo) as c:
        resp = await c.responses.create(
            model="openai/gpt-4o-mini",
            input="Use get_weather for Paris, answer in JSON",
            tools=[WEATHER],
            tool_choice={"type": "function", "name": "get_weather"},
            parallel_tool_calls=False,
            temperature=0.5,
            top_p=0.9,
            user="u-1",
            metadata={"team": "a"},
        )
        plain = await c.responses.create(
            model="openai/gpt-4o-mini", input="JSON please", text={"format": {"type": "json_object"}}
        )
    [call] = [o for o in resp.output if o.type == "function_call"]
    assert call.name == "get_weather"
    assert resp.metadata == {"team": "a"} and resp.temperature == 0.5 and resp.parallel_tool_calls is False
    first, second = upstream_bodies(demo)
    assert first["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert first["parallel_tool_calls"] is False
    assert (first["temperature"], first["top_p"], first["user"]) == (0.5, 0.9, "u-1")
    assert second["response_format"] == {"type": "json_object"}
    json.loads(plain.output_text)


async def test_retention_days_in_routes_yaml_bounds_the_store(
    routes_copy: Path, make_demo: DemoFactory
) -> None:
    """30 days unless routes.yaml says otherwise; `responses.retention_days: 0` keeps nothing, even with
    `store: true`."""
    default = await make_demo()
    assert default.runtime.responses.retention_s == 30 * 86400
    edit_routes(routes_copy, lambda doc: doc.__setitem__("responses", {"retention_days": 0}))
    demo = await make_demo()
    async with client(demo) as c:
        resp = await c.responses.create(model="auto", input="hi", store=True)
        with pytest.raises(openai.NotFoundError):
            await c.responses.retrieve(resp.id)
    assert demo.runtime.responses.db["responses"].count == 0
