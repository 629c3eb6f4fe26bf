"""The `anthropic` SDK against the gateway and the simulator (issue 13): token counting, dated model ids,
structured output both ways, `message_start` usage, stop sequences, thinking and `top_k` on every upstream
format. The simulated upstreams reject any field their real API does not know, so a test that passes has
also shown that nothing foreign reached them.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from faregate.providers.reasoning import BUDGETS
from tests.conftest import Demo
from tests.server.translation_helpers import APIS, UPSTREAMS, anth, last_body, oai, sent_to

HELLO: Any = [{"role": "user", "content": "Hello there"}]
CITY_SCHEMA: Any = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


class City(pydantic.BaseModel):
    city: str
    population: int


# -- count_tokens ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_count_tokens_counts_for_the_model_it_would_route_to(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    async with anth(demo) as c:
        raw = await c.messages.with_raw_response.count_tokens(
            model=up.model, messages=HELLO, system="Be terse."
        )
        counted = await raw.parse()
    body = json.loads(raw.http_response.text)
    assert counted.input_tokens == body["input_tokens"] > 0
    info = body["x-faregate"]
    assert (info["model"], info["provider"]) == (up.model, up.provider)
    assert info["estimated"] is (api != "openai")  # tiktoken is only OpenAI's own tokenizer
    assert raw.headers["X-Faregate-Model"] == up.model
    assert raw.headers["X-Faregate-Estimated"] == str(api != "openai").lower()
    assert not sent_to(demo, up), "counting never calls the upstream"
    # what the chat request itself is counted as (its prompt tokens in the trace's features)
    async with anth(demo) as c:
        message = await c.messages.create(model=up.model, max_tokens=16, messages=HELLO, system="Be terse.")
    assert message.usage.input_tokens > 0


async def test_count_tokens_grows_with_tools_and_follows_the_route(demo: Demo) -> None:
    tool: Any = {"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}
    async with anth(demo) as c:
        bare = await c.messages.count_tokens(model="auto", messages=HELLO)
        with_tools = await c.messages.count_tokens(model="auto", messages=HELLO, tools=[tool])
    assert with_tools.input_tokens > bare.input_tokens > 0


async def test_count_tokens_errors_in_anthropics_envelope(demo: Demo) -> None:
    import anthropic

    async with anth(demo) as c:
        with pytest.raises(anthropic.NotFoundError) as info:
            await c.messages.count_tokens(model="no-such/model", messages=HELLO)
        with pytest.raises(anthropic.BadRequestError):
            await c.messages.count_tokens(model="auto", messages=[])
        only = {"provider": {"only": ["anthropic"]}}
        with pytest.raises(anthropic.BadRequestError) as empty:  # a plan with no channel: the chat error
            await c.messages.count_tokens(model="openai/gpt-4o-mini", messages=HELLO, extra_body=only)
    assert "no channel can serve this request" in empty.value.message
    assert info.value.body["type"] == "error"  # type: ignore[index]


# -- dated model ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dated", "model", "upstream_id"),
    [
        ("claude-haiku-4-5-20251001", "anthropic/claude-haiku-4.5", "claude-haiku-4-5"),
        ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),
    ],
)
async def test_dated_model_ids_resolve_to_their_model(
    demo: Demo, dated: str, model: str, upstream_id: str
) -> None:
    async with anth(demo) as c:
        raw = await c.messages.with_raw_response.create(model=dated, max_tokens=16, messages=HELLO)
        message = await raw.parse()
        counted = await c.messages.count_tokens(model=dated, messages=HELLO)
    assert raw.headers["X-Faregate-Model"] == model
    assert message.model == model
    assert counted.input_tokens > 0
    sent = [r.json() for r in demo.sim.received_for("anthropic") if r.body]
    assert sent[-1]["model"] == upstream_id


# -- structured output -----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_messages_parse_gets_a_structured_answer_from_any_upstream(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    async with anth(demo) as c:
        parsed = await c.messages.parse(model=up.model, max_tokens=200, messages=HELLO, output_format=City)
    assert isinstance(parsed.parsed_output, City)
    sent = last_body(demo, up)
    if api == "anthropic":
        assert sent["output_config"]["format"]["type"] == "json_schema"
    elif api == "openai":
        assert sent["response_format"]["type"] == "json_schema"
        assert sent["response_format"]["json_schema"]["schema"]["required"] == ["city", "population"]
    else:
        assert sent["generationConfig"]["responseMimeType"] == "application/json"
        assert set(sent["generationConfig"]["responseSchema"]["properties"]) == {"city", "population"}


@pytest.mark.parametrize("api", APIS)
async def test_output_config_format_streams_json_too(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    fmt: Any = {"format": {"type": "json_schema", "schema": CITY_SCHEMA}}
    async with (
        anth(demo) as c,
        c.messages.stream(model=up.model, max_tokens=200, messages=HELLO, output_config=fmt) as stream,
    ):
        final = await stream.get_final_message()
    text = "".join(b.text for b in final.content if b.type == "text")
    assert set(json.loads(text)) == {"city", "population"}


async def test_openai_json_schema_to_anthropic_is_structured_output(demo: Demo) -> None:
    up = UPSTREAMS["anthropic"]
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True}}
    async with oai(demo) as c:
        done = await c.chat.completions.create(model=up.model, messages=HELLO, response_format=fmt)
    assert set(json.loads(done.choices[0].message.content or "")) == {"city", "population"}
    sent = last_body(demo, up)
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": CITY_SCHEMA}}
    assert "system" not in sent  # no instruction needed: Anthropic constrains the output itself


# -- message_start usage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_message_start_carries_the_prompt_tokens(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    async with anth(demo) as c, c.messages.stream(model=up.model, max_tokens=32, messages=HELLO) as stream:
        first = None
        async for ev in stream:
            if ev.type == "message_start":
                first = ev.message.usage.input_tokens
        final = await stream.get_final_message()
    assert first is not None and first > 0
    if api == "anthropic":  # the upstream's own count, passed on
        assert first == final.usage.input_tokens
    else:  # faregate's count until the upstream reports its own at the end
        assert abs(first - final.usage.input_tokens) <= 8


# -- thinking / reasoning and top_k ----------------------------------------------------------------------


async def test_thinking_becomes_reasoning_effort_for_an_openai_reasoning_model(demo: Demo) -> None:
    async with anth(demo) as c:
        await c.messages.create(
            model="openai/gpt-6-luna",
            max_tokens=4096,
            messages=HELLO,
            thinking={"type": "enabled", "budget_tokens": 2048},
        )
    sent = [r.json() for r in demo.sim.received_for("openai") if r.body][-1]
    assert sent["reasoning_effort"] == "low"


async def test_thinking_to_a_model_that_does_not_think_is_reported_dropped(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    async with anth(demo) as c:
        raw = await c.messages.with_raw_response.create(
            model=up.model,
            max_tokens=4096,
            messages=HELLO,
            thinking={"type": "enabled", "budget_tokens": 2048},
        )
    body = json.loads(raw.http_response.text)
    assert "reasoning" in body["x-faregate"]["routing"]["dropped_params"]
    assert "reasoning_effort" not in last_body(demo, up)


@pytest.mark.parametrize("api", ["anthropic", "gemini"])
async def test_reasoning_effort_and_top_k_reach_anthropic_and_gemini(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    async with oai(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model=up.model,
            messages=HELLO,
            max_tokens=16000,
            reasoning_effort="medium",
            extra_body={"top_k": 20},
        )
    body = json.loads(raw.http_response.text)
    sent = last_body(demo, up)
    if api == "anthropic":
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": BUDGETS["medium"]}
        assert "top_k" not in sent  # Anthropic takes no top_k with thinking: reported
        assert any(d.startswith("top_k") for d in body["x-faregate"]["routing"]["dropped_params"])
    else:
        assert sent["generationConfig"]["thinkingConfig"] == {"thinkingBudget": BUDGETS["medium"]}
        assert sent["generationConfig"]["topK"] == 20


@pytest.mark.parametrize("api", ["anthropic", "gemini"])
async def test_top_k_from_an_anthropic_client(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    async with anth(demo) as c:
        await c.messages.create(model=up.model, max_tokens=16, messages=HELLO, extra_body={"top_k": 5})
    sent = last_body(demo, up)
    assert (sent["top_k"] if api == "anthropic" else sent["generationConfig"]["topK"]) == 5


async def test_top_k_never_reaches_openai(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    async with anth(demo) as c:
        raw = await c.messages.with_raw_response.create(
            model=up.model, max_tokens=16, messages=HELLO, extra_body={"top_k": 5}
        )
    assert "top_k" in json.loads(raw.http_response.text)["x-faregate"]["routing"]["dropped_params"]
    assert "top_k" not in last_body(demo, up)


async def test_openrouter_reasoning_object_maps_like_thinking(demo: Demo) -> None:
    up = UPSTREAMS["gemini"]
    async with oai(demo) as c:
        await c.chat.completions.create(
            model=up.model, messages=HELLO, extra_body={"reasoning": {"max_tokens": 3000}}
        )
    assert last_body(demo, up)["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 3000}
    async with oai(demo) as c:
        await c.chat.completions.create(
            model="openai/gpt-6-luna", messages=HELLO, extra_body={"reasoning": {"effort": "high"}}
        )
    sent = [r.json() for r in demo.sim.received_for("openai") if r.body][-1]
    assert sent["reasoning_effort"] == "high" and "reasoning" not in sent
