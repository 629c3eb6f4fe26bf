"""`POST /v1/chat/completions` with the official `openai` SDK against the gateway and the simulator.

Each answer is checked for its accounting (`usage.cost`, `x-faregate`, the `X-Faregate-*` headers, the cost
recomputed exactly from the channel's price) and for which channel served it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.conftest import Demo
from tests.server.helpers import (
    HELLO,
    assert_no_routing_fields,
    check_accounting,
    client,
    decimal_json,
    providers_called,
    upstream_bodies,
)

# A 1x1 transparent PNG.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "celsius": {"type": "boolean"}},
            "required": ["city", "celsius"],
        },
    },
}


async def chat(demo: Demo, **kw: Any) -> tuple[ChatCompletion, dict[str, Any], dict[str, Any]]:
    """One completion: the SDK's parsed object, the body (floats as exact `Decimal`), the routing checked."""
    kw.setdefault("messages", HELLO)
    async with client(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(**kw)
    completion = raw.parse()
    body = decimal_json(raw.text)
    routing = check_accounting(demo, body, raw.headers)
    return completion, body, routing


async def test_auto_walks_the_default_route(demo: Demo) -> None:
    completion, body, routing = await chat(demo, model="auto")
    table = demo.runtime.holder.current.table
    rule = next(r for r in table.routes["default"] if r.name == "everything-else")
    assert routing["route"] == "default" and routing["rule"] == "everything-else"
    assert routing["channel"] == rule.channels[0].id  # the cheapest, nothing failed
    assert [a["outcome"] for a in routing["attempts"]] == ["ok"]
    assert completion.model == routing["model"]
    assert completion.choices[0].message.content
    assert completion.choices[0].message.content.startswith("[simulated ")
    assert body["x-faregate"]["simulated"] is True
    assert providers_called(demo) == [routing["provider"]]


async def test_omitted_model_means_auto(demo: Demo) -> None:
    """The SDK insists on `model`: the raw body has none, and gets the `auto` route."""
    async with client(demo) as c:
        raw = await c.post("/chat/completions", body={"messages": HELLO}, cast_to=object)
    assert isinstance(raw, dict)
    assert raw["x-faregate"]["routing"]["rule"] == "everything-else"


async def test_explicit_model_is_pinned(demo: Demo) -> None:
    completion, _, routing = await chat(demo, model="openai/gpt-4o-mini")
    assert (routing["provider"], routing["model"]) == ("openai", "openai/gpt-4o-mini")
    assert routing["rule"] is None and routing["route"] is None
    assert routing["reason"] == "pinned model #1"
    assert completion.model == "openai/gpt-4o-mini"
    [sent] = upstream_bodies(demo)
    assert sent["model"] == "gpt-4o-mini"  # the offering's upstream id


async def test_bare_upstream_id_resolves_to_its_model(demo: Demo) -> None:
    completion, _, routing = await chat(demo, model="codestral-latest")
    assert (routing["provider"], routing["model"]) == ("mistral", "mistralai/codestral")
    assert completion.model == "mistralai/codestral"
    [sent] = upstream_bodies(demo)
    assert sent["model"] == "codestral-latest"


async def test_alias_walks_its_route(demo: Demo) -> None:
    _, _, routing = await chat(demo, model="smart")
    assert (routing["route"], routing["rule"]) == ("smart", "smart")
    assert (routing["provider"], routing["model"]) == ("anthropic", "anthropic/claude-sonnet-5")  # ordered
    assert providers_called(demo) == ["anthropic"]


async def test_header_model_wins_over_the_body(demo: Demo) -> None:
    _, _, routing = await chat(demo, model="smart", extra_headers={"Faregate-Model": "openai/gpt-4o-mini"})
    assert routing["model"] == "openai/gpt-4o-mini" and routing["rule"] is None


@pytest.mark.parametrize(
    ("model", "provider", "expected_model"),
    [
        ("openai/gpt-4o-mini", "openrouter", "openai/gpt-4o-mini"),
        ("auto", "google", "google/gemini-2.5-flash-lite"),
    ],
)
async def test_header_provider_narrows_the_plan(
    demo: Demo, model: str, provider: str, expected_model: str
) -> None:
    _, _, routing = await chat(demo, model=model, extra_headers={"Faregate-Provider": provider})
    assert (routing["provider"], routing["model"]) == (provider, expected_model)
    assert providers_called(demo) == [provider]


@pytest.mark.parametrize(
    ("model", "prefs", "provider"),
    [
        ("openai/gpt-4o-mini", {"order": ["openrouter", "openai"]}, "openrouter"),
        ("auto", {"only": ["google"]}, "google"),
        ("auto", {"ignore": ["openrouter", "together", "groq"]}, "google"),
        ("auto", {"sort": "price", "only": ["openai", "mistral"]}, "openai"),
    ],
)
async def test_provider_preferences_narrow_the_plan(
    demo: Demo, model: str, prefs: dict[str, Any], provider: str
) -> None:
    _, _, routing = await chat(demo, model=model, extra_body={"provider": prefs})
    assert routing["provider"] == provider
    assert providers_called(demo) == [provider]
    assert_no_routing_fields(demo)


async def test_provider_preferences_cannot_widen_routes_yaml(demo: Demo) -> None:
    """routes.yaml denies providers that collect data (deepseek): a request cannot allow them back."""
    prefs = {"only": ["deepseek"], "data_collection": "allow"}
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.chat.completions.create(model="auto", messages=HELLO, extra_body={"provider": prefs})
    assert caught.value.code == "no_capable_channel"
    assert demo.sim.received == ()


async def test_models_list_is_a_fallback_chain(demo: Demo) -> None:
    demo.sim.fail("openai", 500)
    _, _, routing = await chat(
        demo,
        model="openai/gpt-6-luna",
        extra_body={"models": ["openai/gpt-6-luna", "mistralai/mistral-small"]},
    )
    assert (routing["provider"], routing["model"]) == ("mistral", "mistralai/mistral-small")
    assert routing["reason"].startswith("models[1] fallback")
    assert [(a["provider"], a["status"]) for a in routing["attempts"]] == [("openai", 500), ("mistral", 200)]
    assert providers_called(demo) == ["openai", "mistral"]
    assert_no_routing_fields(demo)


@pytest.mark.parametrize("model", ["auto", "openai/gpt-4o-mini", "anthropic/claude-haiku-4.5"])
async def test_tool_call_then_tool_result(demo: Demo, model: str) -> None:
    ask = [{"role": "user", "content": "Use get_weather for Paris, please."}]
    first, _, routing = await chat(demo, model=model, messages=ask, tools=[WEATHER_TOOL])
    if model == "auto":
        assert routing["rule"] == "tools"
    assert "tools" in demo.runtime.holder.current.table.channels[routing["channel"]].caps
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city", "celsius"}

    answered = [
        *ask,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    second, _, again = await chat(demo, model=model, messages=answered, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert "Tool result received" in (second.choices[0].message.content or "")
    assert again["channel"] == routing["channel"]


@pytest.mark.parametrize("model", ["auto", "openai/gpt-4o-mini", "google/gemini-2.5-flash-lite"])
async def test_response_format_json_object(demo: Demo, model: str) -> None:
    messages = [{"role": "user", "content": "Answer in JSON: what is a harbor?"}]
    completion, _, _ = await chat(
        demo, model=model, messages=messages, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


async def test_image_goes_to_a_vision_channel(demo: Demo) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
            ],
        }
    ]
    _, _, routing = await chat(demo, model="auto", messages=messages)
    assert routing["rule"] == "vision"
    assert "vision" in demo.runtime.holder.current.table.channels[routing["channel"]].caps
    [received] = demo.sim.received
    assert received.provider == routing["provider"]
    assert PIXEL.encode() in (received.body or b"")  # the image itself went upstream


async def test_routing_fields_never_reach_the_upstream(demo: Demo) -> None:
    await chat(
        demo,
        model="auto",
        extra_body={"provider": {"order": ["openrouter"], "allow_fallbacks": True}, "models": ["cheap"]},
        seed=7,
    )
    [sent] = upstream_bodies(demo)
    assert_no_routing_fields(demo)
    assert sent["seed"] == 7  # other unknown fields are forwarded unchanged
