"""The provider simulator: wire formats (checked with the official SDKs), validation, listings, faults."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import struct
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from faregate.simulator import Received, SimModel, SimProvider, Simulator, run_simulator
from faregate.simulator.behaviour import Prompt, ToolSpec, answer, signed_thought, synthesize, truncate
from faregate.simulator.listings import per_token

D = Decimal
OPENAI_KEY = {"Authorization": "Bearer sk-test"}
ANTHROPIC_KEY = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
GEMINI_KEY = {"x-goog-api-key": "AIza-test"}
HI = {"role": "user", "content": "Hello there, how are you today?"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
                "detail": {
                    "type": "object",
                    "properties": {"hourly": {"type": "boolean"}},
                    "required": ["hourly"],
                },
                "tags": {"type": "array", "items": {"type": "number"}},
                "optional": {"type": "string"},
            },
            "required": ["city", "unit", "days", "detail", "tags"],
        },
    },
}
WEATHER_ARGS = {"city": "sample", "unit": "celsius", "days": 1, "detail": {"hourly": True}, "tags": [1]}


def count_tokens(text: str) -> int:
    """A stand-in tokenizer: words and punctuation marks (the simulator takes any counter)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def chat_model(upstream_id: str, name: str, context: int = 128_000) -> SimModel:
    return SimModel(upstream_id, name, "chat", context, D("0.15"), D("0.60"))


def providers() -> list[SimProvider]:
    embed = SimModel("text-embedding-3-small", "Embedding 3 small", "embedding", 8191, D("0.02"), D("0"))
    claude = [
        chat_model(f"claude-{n}", f"Claude {n}", 200_000) for n in ("haiku", "sonnet", "opus", "mini", "max")
    ]
    gemini = [chat_model(f"gemini-{n}", f"Gemini {n}") for n in ("flash", "pro", "lite")]
    return [
        SimProvider("openai", "openai", "openai", (chat_model("gpt-4o-mini", "GPT-4o mini"), embed)),
        SimProvider("anthropic", "anthropic", "anthropic", tuple(claude)),
        SimProvider(
            "google",
            "gemini",
            "gemini",
            (*gemini, SimModel("text-embedding-004", "Embedding 004", "embedding", 2048, D("0"), D("0"))),
        ),
        SimProvider(
            "openrouter", "openai", "openrouter", (chat_model("meta-llama/llama-3.1-8b-instruct", "Llama"),)
        ),
        SimProvider("ollama", "openai", "ollama", (chat_model("llama3.2", "Llama 3.2"),)),
        SimProvider(
            "together", "openai", "together", (chat_model("meta-llama/Llama-3-8b-chat-hf", "Llama 3 8B"),)
        ),
    ]


@pytest.fixture
def sim() -> Simulator:
    return Simulator(providers(), count_tokens)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, sim: Simulator) -> TestClient[Any, Any]:
    return await aiohttp_client(sim.create_app())


@pytest.fixture
async def origin(sim: Simulator) -> AsyncIterator[str]:
    runner, url = await run_simulator(sim)
    yield url
    await runner.cleanup()


async def sse(resp: aiohttp.ClientResponse) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in (await resp.text()).split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            events.append((fields.get("event"), fields["data"]))
    return events


async def openai_chat(client: TestClient[Any, Any], body: dict[str, Any], provider: str = "openai") -> Any:
    resp = await client.post(f"/{provider}/v1/chat/completions", json=body, headers=OPENAI_KEY)
    assert resp.status == 200, await resp.text()
    return await resp.json()


# -- OpenAI wire ------------------------------------------------------------------------------------------


async def test_openai_chat_is_labelled_and_counts_usage(client: TestClient[Any, Any]) -> None:
    resp = await client.post(
        "/openai/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [HI]}, headers=OPENAI_KEY
    )
    body = await resp.json()
    assert resp.headers["X-Faregate-Simulator"] == "openai"
    assert body["object"] == "chat.completion" and body["system_fingerprint"] == "faregate-simulator"
    text = body["choices"][0]["message"]["content"]
    assert text.startswith("[simulated openai/gpt-4o-mini] You said: Hello there, how are you today.")
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == count_tokens(HI["content"]) + 3 + 3
    assert usage["completion_tokens"] == count_tokens(text)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_same_request_same_answer(client: TestClient[Any, Any]) -> None:
    body = {"model": "gpt-4o-mini", "messages": [HI]}
    first, second = await openai_chat(client, body), await openai_chat(client, body)
    assert first["choices"] == second["choices"] and first["usage"] == second["usage"]
    other = await openai_chat(client, {**body, "messages": [{"role": "user", "content": "Something else"}]})
    assert other["choices"][0]["message"]["content"] != first["choices"][0]["message"]["content"]


async def test_openai_stream_follows_documented_chunk_sequence(client: TestClient[Any, Any]) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [HI],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    resp = await client.post("/openai/v1/chat/completions", json=body, headers=OPENAI_KEY)
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = [data for _, data in await sse(resp)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(d) for d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    plain = await openai_chat(client, {"model": "gpt-4o-mini", "messages": [HI]})
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"] == plain["usage"]


async def test_openai_stream_without_include_usage_has_no_usage_field(client: TestClient[Any, Any]) -> None:
    body = {"model": "gpt-4o-mini", "messages": [HI], "stream": True}
    resp = await client.post("/openai/v1/chat/completions", json=body, headers=OPENAI_KEY)
    chunks = [json.loads(d) for _, d in await sse(resp) if d != "[DONE]"]
    assert all("usage" not in c for c in chunks)


async def test_max_tokens_stops_with_length(client: TestClient[Any, Any]) -> None:
    long = {"role": "user", "content": "Tell me a story REPLY_TOKENS=200"}
    body = await openai_chat(client, {"model": "gpt-4o-mini", "messages": [long], "max_completion_tokens": 7})
    assert body["choices"][0]["finish_reason"] == "length"
    assert 0 < body["usage"]["completion_tokens"] <= 7


async def test_reply_tokens_asks_for_a_long_answer(client: TestClient[Any, Any]) -> None:
    body = await openai_chat(
        client, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "go REPLY_TOKENS=300"}]}
    )
    assert 295 <= body["usage"]["completion_tokens"] <= 300
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_stop_sequence_cuts_the_answer(client: TestClient[Any, Any]) -> None:
    body = await openai_chat(client, {"model": "gpt-4o-mini", "messages": [HI], "stop": ["You said"]})
    assert body["choices"][0]["message"]["content"] == "[simulated openai/gpt-4o-mini] "
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_json_mode_answers_a_json_object(client: TestClient[Any, Any]) -> None:
    ask = {"role": "user", "content": "Reply in json please"}
    body = await openai_chat(
        client, {"model": "gpt-4o-mini", "messages": [ask], "response_format": {"type": "json_object"}}
    )
    parsed = json.loads(body["choices"][0]["message"]["content"])
    assert parsed["answer"].startswith("[simulated openai/gpt-4o-mini]")


async def test_openai_tool_call_synthesized_from_schema(client: TestClient[Any, Any]) -> None:
    ask = {"role": "user", "content": "Use get_weather for Paris"}
    body = await openai_chat(client, {"model": "gpt-4o-mini", "messages": [ask], "tools": [WEATHER_TOOL]})
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["id"].startswith("call_") and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == WEATHER_ARGS
    assert body["usage"]["completion_tokens"] == count_tokens(call["function"]["arguments"])
    # a tool offered but not named, with tool_choice auto: plain text
    plain = await openai_chat(client, {"model": "gpt-4o-mini", "messages": [HI], "tools": [WEATHER_TOOL]})
    assert plain["choices"][0]["finish_reason"] == "stop"
    forced = await openai_chat(
        client, {"model": "gpt-4o-mini", "messages": [HI], "tools": [WEATHER_TOOL], "tool_choice": "required"}
    )
    assert forced["choices"][0]["finish_reason"] == "tool_calls"


async def test_openai_tool_result_is_acknowledged(client: TestClient[Any, Any]) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Use get_weather"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 degrees"},
    ]
    body = await openai_chat(client, {"model": "gpt-4o-mini", "messages": messages, "tools": [WEATHER_TOOL]})
    text = body["choices"][0]["message"]["content"]
    assert text == "[simulated openai/gpt-4o-mini] Tool result received: Sunny, 21 degrees"


async def test_openai_stream_tool_call_deltas(client: TestClient[Any, Any]) -> None:
    body = {"model": "gpt-4o-mini", "messages": [HI], "tools": [WEATHER_TOOL], "tool_choice": "required"}
    resp = await client.post("/openai/v1/chat/completions", json={**body, "stream": True}, headers=OPENAI_KEY)
    chunks = [json.loads(d) for _, d in await sse(resp) if d != "[DONE]"]
    fragments = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert fragments[0]["id"].startswith("call_") and fragments[0]["function"]["name"] == "get_weather"
    assert all("id" not in f and f["index"] == 0 for f in fragments[1:]) and len(fragments) > 2
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == WEATHER_ARGS
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "gpt-4o-mini"}, 400, "messages"),
        ({"model": "gpt-5-imaginary", "messages": [HI]}, 404, None),
        ({"model": "gpt-4o-mini", "messages": [HI], "provider": {"order": ["x"]}}, 400, None),
        (
            {"model": "gpt-4o-mini", "messages": [HI], "stream_options": {"include_usage": True}},
            400,
            "stream_options",
        ),
        ({"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role"),
        ({"model": "gpt-4o-mini", "messages": [HI], "max_tokens": 0}, 400, "max_tokens"),
        ({"model": "text-embedding-3-small", "messages": [HI]}, 404, None),
    ],
)
async def test_openai_validation_errors(
    client: TestClient[Any, Any], body: dict[str, Any], status: int, param: str | None
) -> None:
    resp = await client.post("/openai/v1/chat/completions", json=body, headers=OPENAI_KEY)
    assert resp.status == status
    error = (await resp.json())["error"]
    assert set(error) == {"message", "type", "code", "param"} and error["param"] == param
    if status == 404:
        assert error["code"] == "model_not_found"


async def test_openai_auth_and_unknown_routes(client: TestClient[Any, Any]) -> None:
    body = {"model": "gpt-4o-mini", "messages": [HI]}
    resp = await client.post("/openai/v1/chat/completions", json=body)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "invalid_api_key"
    assert (
        await client.post("/ollama/v1/chat/completions", json={**body, "model": "llama3.2"})
    ).status == 200
    # OpenRouter lives under /api/v1 and accepts its own routing fields
    wrong = await client.post("/openrouter/v1/chat/completions", json=body, headers=OPENAI_KEY)
    assert wrong.status == 404
    routed = {"model": "meta-llama/llama-3.1-8b-instruct", "messages": [HI], "provider": {"sort": "price"}}
    assert (await openai_chat(client, routed, "openrouter/api"))["object"] == "chat.completion"
    assert (await client.post("/nobody/v1/chat/completions", json=body)).status == 404
    assert (
        await client.post("/anthropic/v1/chat/completions", json=body, headers=ANTHROPIC_KEY)
    ).status == 404


async def test_openai_embeddings(client: TestClient[Any, Any]) -> None:
    body = {"model": "text-embedding-3-small", "input": ["alpha", "beta gamma"]}
    resp = await client.post("/openai/v1/embeddings", json=body, headers=OPENAI_KEY)
    data = await resp.json()
    vectors = [d["embedding"] for d in data["data"]]
    assert 8 <= len(vectors[0]) <= 64 and vectors[0] != vectors[1]
    assert all(math.isclose(sum(v * v for v in vec), 1.0, rel_tol=1e-9) for vec in vectors)
    assert data["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    again = await (await client.post("/openai/v1/embeddings", json=body, headers=OPENAI_KEY)).json()
    assert again["data"] == data["data"]
    sized = {**body, "dimensions": 5, "encoding_format": "base64"}
    b64 = (await (await client.post("/openai/v1/embeddings", json=sized, headers=OPENAI_KEY)).json())["data"][
        0
    ]
    assert len(struct.unpack("<5f", base64.b64decode(b64["embedding"]))) == 5


# -- Anthropic wire ---------------------------------------------------------------------------------------


async def anthropic_messages(client: TestClient[Any, Any], body: dict[str, Any]) -> aiohttp.ClientResponse:
    return await client.post("/anthropic/v1/messages", json=body, headers=ANTHROPIC_KEY)


async def test_anthropic_message_and_stream_agree(client: TestClient[Any, Any]) -> None:
    body = {"model": "claude-haiku", "max_tokens": 100, "system": "Be brief.", "messages": [HI]}
    message = await (await anthropic_messages(client, body)).json()
    assert message["id"].startswith("msg_") and message["type"] == "message"
    assert message["stop_reason"] == "end_turn" and message["content"][0]["type"] == "text"
    assert message["content"][0]["text"].startswith("[simulated anthropic/claude-haiku] ")
    assert set(message["usage"]) >= {"input_tokens", "output_tokens", "cache_creation_input_tokens"}
    events = await sse(await anthropic_messages(client, {**body, "stream": True}))
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(json.loads(data)["type"] == name for name, data in events)
    deltas = [json.loads(d)["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert len(deltas) > 3 and "".join(deltas) == message["content"][0]["text"]
    final = json.loads(events[-2][1])
    assert final["usage"]["output_tokens"] == message["usage"]["output_tokens"]
    assert json.loads(events[0][1])["message"]["usage"]["input_tokens"] == message["usage"]["input_tokens"]


async def test_anthropic_max_tokens_and_stop_sequence(client: TestClient[Any, Any]) -> None:
    ask = {"role": "user", "content": "go REPLY_TOKENS=100"}
    short = await (
        await anthropic_messages(client, {"model": "claude-haiku", "max_tokens": 5, "messages": [ask]})
    ).json()
    assert short["stop_reason"] == "max_tokens" and short["usage"]["output_tokens"] <= 5
    body = {"model": "claude-haiku", "max_tokens": 100, "messages": [HI], "stop_sequences": ["You said"]}
    stopped = await (await anthropic_messages(client, body)).json()
    assert stopped["stop_reason"] == "stop_sequence" and stopped["stop_sequence"] == "You said"


@pytest.mark.parametrize(
    ("headers", "body", "status", "error_type"),
    [
        ({"anthropic-version": "2023-06-01"}, {}, 401, "authentication_error"),
        ({"x-api-key": "k"}, {}, 400, "invalid_request_error"),
        (ANTHROPIC_KEY, {"model": "claude-haiku", "messages": [HI]}, 400, "invalid_request_error"),
        (ANTHROPIC_KEY, {"model": "claude-x", "max_tokens": 5, "messages": [HI]}, 404, "not_found_error"),
        (
            ANTHROPIC_KEY,
            {"model": "claude-haiku", "max_tokens": 5, "messages": [HI, HI]},
            400,
            "invalid_request_error",
        ),
        (
            ANTHROPIC_KEY,
            {"model": "claude-haiku", "max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}]},
            400,
            "invalid_request_error",
        ),
    ],
)
async def test_anthropic_validation_errors(
    client: TestClient[Any, Any], headers: dict[str, str], body: dict[str, Any], status: int, error_type: str
) -> None:
    default = {"model": "claude-haiku", "max_tokens": 5, "messages": [HI]}
    resp = await client.post("/anthropic/v1/messages", json=body or default, headers=headers)
    assert resp.status == status
    data = await resp.json()
    assert data["type"] == "error" and data["error"]["type"] == error_type


async def test_anthropic_tool_use_and_result(client: TestClient[Any, Any]) -> None:
    tool = {"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}  # type: ignore[index]
    body = {"model": "claude-haiku", "max_tokens": 200, "messages": [HI], "tools": [tool]}
    forced = {**body, "tool_choice": {"type": "tool", "name": "get_weather"}}
    message = await (await anthropic_messages(client, forced)).json()
    assert message["stop_reason"] == "tool_use"
    block = message["content"][0]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_") and block["input"] == WEATHER_ARGS
    events = await sse(await anthropic_messages(client, {**forced, "stream": True}))
    partial = [json.loads(d)["delta"]["partial_json"] for n, d in events if n == "content_block_delta"]
    assert len(partial) > 1 and json.loads("".join(partial)) == WEATHER_ARGS
    result = {"type": "tool_result", "tool_use_id": block["id"], "content": "Rainy"}
    turn = [HI, {"role": "assistant", "content": [block]}, {"role": "user", "content": [result]}]
    answered = await (await anthropic_messages(client, {**body, "messages": turn})).json()
    assert answered["content"][0]["text"].endswith("Tool result received: Rainy")
    orphan = [HI, {"role": "assistant", "content": [block]}, {"role": "user", "content": "no result"}]
    assert (await anthropic_messages(client, {**body, "messages": orphan})).status == 400


# -- Gemini wire ------------------------------------------------------------------------------------------


def gemini_body(text: str = "Hello there, how are you today?", **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


async def test_gemini_generate_and_stream_agree(client: TestClient[Any, Any]) -> None:
    resp = await client.post(
        "/google/v1beta/models/gemini-flash:generateContent", json=gemini_body(), headers=GEMINI_KEY
    )
    data = await resp.json()
    candidate = data["candidates"][0]
    assert candidate["content"]["role"] == "model" and candidate["finishReason"] == "STOP"
    text = candidate["content"]["parts"][0]["text"]
    assert text.startswith("[simulated google/gemini-flash] ") and data["modelVersion"] == "gemini-flash"
    usage = data["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    stream = await client.post(
        "/google/v1beta/models/gemini-flash:streamGenerateContent?alt=sse&key=AIza-test", json=gemini_body()
    )
    chunks = [json.loads(d) for _, d in await sse(stream)]
    assert len(chunks) > 3 and all("usageMetadata" not in c for c in chunks[:-1])
    assert chunks[-1]["usageMetadata"] == usage and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == text
    array = await client.post(
        "/google/v1beta/models/gemini-flash:streamGenerateContent", json=gemini_body(), headers=GEMINI_KEY
    )
    assert [c["candidates"][0]["content"] for c in await array.json()] == [
        c["candidates"][0]["content"] for c in chunks
    ]


async def test_gemini_config_tools_and_json(client: TestClient[Any, Any]) -> None:
    url = "/google/v1beta/models/gemini-pro:generateContent"
    limited = gemini_body("go REPLY_TOKENS=100", generationConfig={"maxOutputTokens": 4})
    data = await (await client.post(url, json=limited, headers=GEMINI_KEY)).json()
    assert (
        data["candidates"][0]["finishReason"] == "MAX_TOKENS"
        and data["usageMetadata"]["candidatesTokenCount"] <= 4
    )
    declaration = {
        "name": "get_weather",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
    }
    tools = gemini_body(
        tools=[{"functionDeclarations": [declaration]}], toolConfig={"functionCallingConfig": {"mode": "ANY"}}
    )
    call = (await (await client.post(url, json=tools, headers=GEMINI_KEY)).json())["candidates"][0]
    assert call["content"]["parts"][0]["functionCall"] == {"name": "get_weather", "args": {"city": "sample"}}
    reply = {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}}}],
    }
    turn = gemini_body(contents=[*tools["contents"], call["content"], reply], tools=tools["tools"])
    text = (await (await client.post(url, json=turn, headers=GEMINI_KEY)).json())["candidates"][0]["content"][
        "parts"
    ][0]
    assert text["text"].endswith('Tool result received: {"sky":"clear"}')
    as_json = gemini_body(generationConfig={"responseMimeType": "application/json"})
    parts = (await (await client.post(url, json=as_json, headers=GEMINI_KEY)).json())["candidates"][0][
        "content"
    ]["parts"]
    assert "answer" in json.loads(parts[0]["text"])


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code"),
    [
        ("gemini-flash:generateContent", gemini_body(), {}, 403, "PERMISSION_DENIED"),
        ("gemini-flash:generateContent", {}, GEMINI_KEY, 400, "INVALID_ARGUMENT"),
        ("gemini-flash:generateContent", gemini_body(provider={}), GEMINI_KEY, 400, "INVALID_ARGUMENT"),
        ("gemini-ultra:generateContent", gemini_body(), GEMINI_KEY, 404, "NOT_FOUND"),
        ("text-embedding-004:generateContent", gemini_body(), GEMINI_KEY, 404, "NOT_FOUND"),
        ("gemini-flash:doMagic", gemini_body(), GEMINI_KEY, 404, "NOT_FOUND"),
    ],
)
async def test_gemini_validation_errors(
    client: TestClient[Any, Any],
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    resp = await client.post(f"/google/v1beta/models/{path}", json=body, headers=headers)
    assert resp.status == status
    assert (await resp.json())["error"] == {
        "code": status,
        "message": (await resp.json())["error"]["message"],
        "status": code,
    }


async def test_gemini_embeddings_and_count(client: TestClient[Any, Any]) -> None:
    request = {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "hi"}]},
        "outputDimensionality": 12,
    }
    url = "/google/v1beta/models/text-embedding-004:batchEmbedContents"
    data = await (await client.post(url, json={"requests": [request, request]}, headers=GEMINI_KEY)).json()
    assert len(data["embeddings"]) == 2 and len(data["embeddings"][0]["values"]) == 12
    counted = await client.post(
        "/google/v1beta/models/gemini-flash:countTokens", json=gemini_body(), headers=GEMINI_KEY
    )
    generated = await client.post(
        "/google/v1beta/models/gemini-flash:generateContent", json=gemini_body(), headers=GEMINI_KEY
    )
    assert (await counted.json())["totalTokens"] == (await generated.json())["usageMetadata"][
        "promptTokenCount"
    ]


async def test_same_conversation_costs_the_same_prompt_tokens_in_every_format(
    client: TestClient[Any, Any],
) -> None:
    image = "iVBORw0KGgo="
    oa = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
                ],
            },
        ],
    }
    source = {"type": "base64", "media_type": "image/png", "data": image}
    an = {
        "model": "claude-haiku",
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image", "source": source},
                ],
            }
        ],
    }
    ge = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is in this picture?"},
                    {"inlineData": {"mimeType": "image/png", "data": image}},
                ],
            }
        ],
    }
    expected = count_tokens("Be brief.") + count_tokens("What is in this picture?") + 85 + 2 * 3 + 3
    assert (await openai_chat(client, oa))["usage"]["prompt_tokens"] == expected
    assert (await (await anthropic_messages(client, an)).json())["usage"]["input_tokens"] == expected
    url = "/google/v1beta/models/gemini-flash:generateContent"
    gemini = await (await client.post(url, json=ge, headers=GEMINI_KEY)).json()
    assert gemini["usageMetadata"]["promptTokenCount"] == expected


@pytest.fixture
async def thinker(aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    """A simulator whose models think in every format: Gemini's 2.5, OpenAI's gpt-5 (Responses)."""
    google = SimProvider("google", "gemini", "gemini", (chat_model("gemini-2.5-flash", "Gemini 2.5 Flash"),))
    openai_ = SimProvider("openai", "openai", "openai", (chat_model("gpt-5-mini", "GPT-5 mini"),))
    rest = [p for p in providers() if p.name not in ("google", "openai")]
    return await aiohttp_client(Simulator([google, openai_, *rest], count_tokens).create_app())


async def test_every_format_thinks_the_same_thought_for_the_same_conversation(
    thinker: TestClient[Any, Any],
) -> None:
    """One thought (behaviour.thinking_text), rendered four ways: OpenAI-compatible `reasoning_content`,
    Anthropic's thinking block, Gemini's thought part, the Responses reasoning summary."""
    hello = {"role": "user", "content": "Hello there"}
    said = "The user said: Hello there. I will answer briefly."
    chat = await openai_chat(thinker, {"model": "gpt-5-mini", "messages": [hello], "reasoning_effort": "low"})
    thinking = {"type": "enabled", "budget_tokens": 1024}
    an = {"model": "claude-haiku", "max_tokens": 2048, "messages": [hello], "thinking": thinking}
    message = await (await anthropic_messages(thinker, an)).json()
    ge = {
        "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
    }
    url = "/google/v1beta/models/gemini-2.5-flash:generateContent"
    gemini = await (await thinker.post(url, json=ge, headers=GEMINI_KEY)).json()
    body = {"model": "gpt-5-mini", "input": "Hello there", "reasoning": {"summary": "auto"}}
    responses = await (await thinker.post("/openai/v1/responses", json=body, headers=OPENAI_KEY)).json()
    assert [
        chat["choices"][0]["message"]["reasoning_content"],
        message["content"][0]["thinking"],
        gemini["candidates"][0]["content"]["parts"][0]["text"],
        responses["output"][0]["summary"][0]["text"],
    ] == [
        f"[simulated openai/gpt-5-mini] {said}",
        f"[simulated anthropic/claude-haiku] {said}",
        f"[simulated google/gemini-2.5-flash] {said}",
        f"[simulated openai/gpt-5-mini] {said}",
    ]


async def test_drop_stream_applies_to_every_wire_format(client: TestClient[Any, Any], sim: Simulator) -> None:
    sim.drop_stream("google", after_events=1)
    url = "/google/v1beta/models/gemini-flash:streamGenerateContent?alt=sse"
    resp = await client.post(url, json=gemini_body(), headers=GEMINI_KEY)
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in resp.content.iter_any():
            received += chunk
    assert received.count(b"data: ") == 1 and b"usageMetadata" not in received


# -- listings ---------------------------------------------------------------------------------------------


async def test_openai_together_openrouter_ollama_listings(client: TestClient[Any, Any]) -> None:
    listed = await (await client.get("/openai/v1/models", headers=OPENAI_KEY)).json()
    assert listed["object"] == "list"
    assert {tuple(sorted(m)) for m in listed["data"]} == {("created", "id", "object", "owned_by")}
    assert [m["id"] for m in listed["data"]] == ["gpt-4o-mini", "text-embedding-3-small"]
    together = await (await client.get("/together/v1/models", headers=OPENAI_KEY)).json()
    assert isinstance(together, list) and together[0]["type"] == "chat"
    assert together[0]["pricing"] == {"hourly": 0, "input": 0.15, "output": 0.6, "base": 0, "finetune": 0}
    router = (await (await client.get("/openrouter/api/v1/models", headers=OPENAI_KEY)).json())["data"][0]
    assert router["pricing"]["prompt"] == "0.00000015" and router["pricing"]["completion"] == "0.0000006"
    assert router["top_provider"]["context_length"] == router["context_length"] == 128_000
    tags = await (await client.get("/ollama/api/tags")).json()
    assert tags["models"][0]["name"] == "llama3.2" and len(tags["models"][0]["digest"]) == 64


def test_per_token_prices_are_plain_decimal_strings() -> None:
    assert per_token(D("0.15")) == "0.00000015"
    assert per_token(D("15")) == "0.000015"
    assert per_token(D("0")) == "0"
    assert per_token(D("100000000")) == "100"


async def test_anthropic_listing_pages(client: TestClient[Any, Any]) -> None:
    seen, after = [], None
    while True:
        query = f"?limit=2&after_id={after}" if after else "?limit=2"
        page = await (await client.get(f"/anthropic/v1/models{query}", headers=ANTHROPIC_KEY)).json()
        assert all(m["type"] == "model" and m["created_at"].endswith("Z") for m in page["data"])
        seen += [m["id"] for m in page["data"]]
        assert page["first_id"] == page["data"][0]["id"] and page["last_id"] == page["data"][-1]["id"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == ["claude-haiku", "claude-sonnet", "claude-opus", "claude-mini", "claude-max"]
    back = await (
        await client.get("/anthropic/v1/models?limit=2&before_id=claude-opus", headers=ANTHROPIC_KEY)
    ).json()
    assert [m["id"] for m in back["data"]] == ["claude-haiku", "claude-sonnet"] and not back["has_more"]
    assert len((await (await client.get("/anthropic/v1/models", headers=ANTHROPIC_KEY)).json())["data"]) == 5
    assert (await client.get("/anthropic/v1/models?limit=0", headers=ANTHROPIC_KEY)).status == 400


async def test_gemini_listing_pages(client: TestClient[Any, Any]) -> None:
    names, token = [], None
    while True:
        query = f"?pageSize=2&pageToken={token}" if token else "?pageSize=2"
        page = await (await client.get(f"/google/v1beta/models{query}", headers=GEMINI_KEY)).json()
        names += [m["name"] for m in page["models"]]
        token = page.get("nextPageToken")
        if token is None:
            break
    assert names == [
        "models/gemini-flash",
        "models/gemini-pro",
        "models/gemini-lite",
        "models/text-embedding-004",
    ]
    one = await (await client.get("/google/v1beta/models/text-embedding-004", headers=GEMINI_KEY)).json()
    assert "embedContent" in one["supportedGenerationMethods"] and one["inputTokenLimit"] == 2048


async def test_set_models_and_set_price_show_in_listings(
    client: TestClient[Any, Any], sim: Simulator
) -> None:
    sim.set_price("openrouter", "meta-llama/llama-3.1-8b-instruct", D("0.05"), D("0.08"))
    router = (await (await client.get("/openrouter/api/v1/models", headers=OPENAI_KEY)).json())["data"][0]
    assert router["pricing"]["prompt"] == "0.00000005" and router["pricing"]["completion"] == "0.00000008"
    sim.set_models("openai", [chat_model("gpt-5-nano", "GPT-5 nano")])
    listed = await (await client.get("/openai/v1/models", headers=OPENAI_KEY)).json()
    assert [m["id"] for m in listed["data"]] == ["gpt-5-nano"]
    gone = await client.post(
        "/openai/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [HI]}, headers=OPENAI_KEY
    )
    assert gone.status == 404
    with pytest.raises(KeyError):
        sim.set_price("openai", "gpt-4o-mini", D("1"), D("1"))


# -- faults -----------------------------------------------------------------------------------------------


async def test_fail_times_then_recovers_and_requests_are_recorded(
    client: TestClient[Any, Any], sim: Simulator
) -> None:
    sim.fail("openai", status=503, times=2)
    body = {"model": "gpt-4o-mini", "messages": [HI]}
    statuses = [
        (await client.post("/openai/v1/chat/completions", json=body, headers=OPENAI_KEY)).status
        for _ in range(3)
    ]
    assert statuses == [503, 503, 200]
    received = sim.received_for("openai")
    assert len(received) == 3 and isinstance(received[0], Received)
    assert received[0].headers["Authorization"] == "<redacted>" and received[0].json() == body


async def test_fail_uses_each_providers_envelope(client: TestClient[Any, Any], sim: Simulator) -> None:
    sim.fail("openai", status=429)
    sim.fail("anthropic", status=529)
    sim.fail("google", status=503)
    limited = await client.post("/openai/v1/chat/completions", json={}, headers=OPENAI_KEY)
    assert limited.status == 429 and limited.headers["Retry-After"] == "1"
    assert (await limited.json())["error"]["code"] == "rate_limit_exceeded"
    overloaded = await client.post("/anthropic/v1/messages", json={}, headers=ANTHROPIC_KEY)
    assert (await overloaded.json())["error"]["type"] == "overloaded_error"
    unavailable = await client.get("/google/v1beta/models", headers=GEMINI_KEY)
    assert (await unavailable.json())["error"]["status"] == "UNAVAILABLE"
    sim.clear()
    assert (await client.get("/google/v1beta/models", headers=GEMINI_KEY)).status == 200
    sim.fail("openai", status=400, error_type="context_length_exceeded")
    custom = await client.post("/openai/v1/chat/completions", json={}, headers=OPENAI_KEY)
    assert (await custom.json())["error"]["type"] == "context_length_exceeded"


async def test_slow_delays_the_answer(client: TestClient[Any, Any], sim: Simulator) -> None:
    sim.slow("openai", 0.2)
    start = time.monotonic()
    await openai_chat(client, {"model": "gpt-4o-mini", "messages": [HI]})
    assert time.monotonic() - start >= 0.2


async def test_hang_until_cleared(client: TestClient[Any, Any], sim: Simulator) -> None:
    sim.hang("anthropic")
    body = {"model": "claude-haiku", "max_tokens": 5, "messages": [HI]}
    with pytest.raises(asyncio.TimeoutError):
        await client.post(
            "/anthropic/v1/messages",
            json=body,
            headers=ANTHROPIC_KEY,
            timeout=aiohttp.ClientTimeout(total=0.3),
        )
    pending = asyncio.create_task(client.post("/anthropic/v1/messages", json=body, headers=ANTHROPIC_KEY))
    await asyncio.sleep(0.1)
    assert not pending.done()
    sim.clear("anthropic")
    assert (await pending).status == 200


async def test_drop_stream_closes_mid_stream(client: TestClient[Any, Any], sim: Simulator) -> None:
    sim.drop_stream("openai", after_events=2)
    body = {"model": "gpt-4o-mini", "messages": [HI], "stream": True}
    resp = await client.post("/openai/v1/chat/completions", json=body, headers=OPENAI_KEY)
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in resp.content.iter_any():
            received += chunk
    assert received.count(b"data: ") == 2 and b"[DONE]" not in received
    sim.clear("openai")
    assert (await openai_chat(client, {"model": "gpt-4o-mini", "messages": [HI]}))[
        "object"
    ] == "chat.completion"


async def test_control_api(client: TestClient[Any, Any], sim: Simulator) -> None:
    assert (await (await client.get("/_sim/health")).json())["status"] == "ok"
    assert (await client.post("/_sim/openai/fail", json={"status": 500, "times": 1})).status == 200
    assert (await client.get("/openai/v1/models", headers=OPENAI_KEY)).status == 500
    assert (await client.get("/openai/v1/models", headers=OPENAI_KEY)).status == 200
    await client.post("/_sim/google/slow", json={"delay_s": 0.01})
    await client.post("/_sim/clear", json={})
    models = [{"upstream_id": "gpt-x", "name": "GPT X", "input_price": "1.5", "output_price": 2}]
    assert (await client.put("/_sim/openai/models", json=models)).status == 200
    assert sim.providers["openai"].models[0].input_price == D("1.5")
    assert (await (await client.get("/_sim/received")).json()) == {"openai": 2}
    assert (await client.post("/_sim/nobody/fail", json={})).status == 404
    assert (await client.post("/_sim/openai/fail", json={"status": 200})).status == 400
    assert (await client.get("/_sim/health")).headers["X-Faregate-Simulator"] == "_sim"


def test_base_urls_follow_each_providers_docs(sim: Simulator) -> None:
    origin = "http://127.0.0.1:8123"
    assert sim.base_url(origin, "openai") == f"{origin}/openai/v1"
    assert sim.base_url(origin, "openrouter") == f"{origin}/openrouter/api/v1"
    assert sim.base_url(origin, "anthropic") == f"{origin}/anthropic"
    assert sim.base_url(origin, "google") == f"{origin}/google/v1beta"
    with pytest.raises(KeyError):
        sim.base_url(origin, "nobody")


# -- behaviour (pure) -------------------------------------------------------------------------------------


def test_synthesize_fills_required_properties_by_type() -> None:
    assert synthesize(WEATHER_TOOL["function"]["parameters"]) == WEATHER_ARGS  # type: ignore[index]
    assert synthesize({"type": ["null", "boolean"]}) is True
    assert synthesize({"anyOf": [{"type": "integer"}, {"type": "string"}]}) == 1


def test_truncate_never_exceeds_the_budget() -> None:
    text = "[simulated x/y] You said: a b c d e f g h."
    for budget in range(1, 20):
        assert 0 < count_tokens(truncate(text, budget, count_tokens)) <= budget


def test_prompt_counts_images_tools_and_messages() -> None:
    prompt = Prompt(
        texts=("hello world",), message_count=1, image_count=2, tools=(ToolSpec("t", {}),), tools_json="{}"
    )
    reply = answer(prompt, "p/m", count_tokens)
    assert reply.prompt_tokens == 2 + 2 + 2 * 85 + 3 + 3


# -- the official SDKs as clients -------------------------------------------------------------------------


async def test_openai_sdk_speaks_to_the_simulator(sim: Simulator, origin: str) -> None:
    client = openai.AsyncOpenAI(base_url=sim.base_url(origin, "openai"), api_key="sk-test", max_retries=0)
    messages: Any = [HI]  # plain dicts, as users pass them
    completion = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert completion.choices[0].message.content and completion.usage is not None
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == completion.choices[0].message.content
    assert chunks[-1].usage == completion.usage
    tools: Any = [WEATHER_TOOL]
    tooled = await client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=tools, tool_choice="required"
    )
    calls: Any = tooled.choices[0].message.tool_calls
    assert tooled.choices[0].finish_reason == "tool_calls"
    assert json.loads(calls[0].function.arguments) == WEATHER_ARGS
    embedded = await client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert math.isclose(sum(v * v for v in embedded.data[0].embedding), 1.0, rel_tol=1e-5)
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="nope", messages=messages)
    await client.close()


async def test_anthropic_sdk_speaks_to_the_simulator(sim: Simulator, origin: str) -> None:
    base_url = sim.base_url(origin, "anthropic")
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="sk-ant-test", max_retries=0)
    messages: Any = [HI]
    message = await client.messages.create(model="claude-haiku", max_tokens=200, messages=messages)
    assert message.content[0].type == "text" and message.stop_reason == "end_turn"
    async with client.messages.stream(model="claude-haiku", max_tokens=200, messages=messages) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == message.content[0].text
    assert final.usage.output_tokens == message.usage.output_tokens
    assert final.usage.input_tokens == message.usage.input_tokens
    tools: Any = [{"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}]  # type: ignore[index]
    async with client.messages.stream(
        model="claude-haiku", max_tokens=200, messages=messages, tools=tools, tool_choice={"type": "any"}
    ) as stream:
        used = await stream.get_final_message()
    assert used.stop_reason == "tool_use" and used.content[0].type == "tool_use"
    assert used.content[0].input == WEATHER_ARGS
    sim.fail("anthropic", status=529, times=1)
    with pytest.raises(anthropic.APIStatusError) as err:
        await client.messages.create(model="claude-haiku", max_tokens=5, messages=messages)
    assert err.value.status_code == 529
    await client.close()


# -- thinking -------------------------------------------------------------------------------------------

THINK = {"type": "enabled", "budget_tokens": 1024}


async def test_anthropic_thinking_is_signed_checked_and_required_in_a_tool_loop(
    client: TestClient[Any, Any],
) -> None:
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    ask = [{"role": "user", "content": "weather please"}]
    body = {"model": "claude-haiku", "max_tokens": 2048, "thinking": THINK, "tools": tools, "messages": ask}
    message = await (await anthropic_messages(client, body)).json()
    thought, call = message["content"]
    assert thought["type"] == "thinking" and call["type"] == "tool_use"
    assert signed_thought(thought["signature"]) == thought["thinking"]
    events = await sse(await anthropic_messages(client, {**body, "stream": True}))
    deltas = [json.loads(d)["delta"] for e, d in events if e == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == thought["thinking"]
    assert next(d["type"] for d in deltas if d["type"] != "thinking_delta") == "signature_delta"
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "ok"}],
    }

    async def passing_back(content: list[Any]) -> int:
        turns = [*ask, {"role": "assistant", "content": content}, result]
        return (await anthropic_messages(client, {**body, "messages": turns})).status

    assert await passing_back([thought, call]) == 200
    assert await passing_back([{**thought, "thinking": ""}, call]) == 200  # display: omitted
    assert await passing_back([{**thought, "thinking": "edited"}, call]) == 400
    assert await passing_back([{**thought, "signature": "Zm9yZWlnbg=="}, call]) == 400
    assert await passing_back([call]) == 400  # thinking on: the tool-use turn must start with its thought
    resp = await anthropic_messages(client, {**body, "max_tokens": 1024})
    assert resp.status == 400 and "budget_tokens" in (await resp.json())["error"]["message"]


async def test_openai_format_reasoning_effort_gets_reasoning_content(client: TestClient[Any, Any]) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "reasoning_effort": "low",
    }
    message = (await openai_chat(client, body))["choices"][0]["message"]
    assert message["reasoning_content"].startswith("[simulated openai/gpt-4o-mini] ")
    plain = (await openai_chat(client, {**body, "reasoning_effort": "none"}))["choices"][0]["message"]
    assert "reasoning_content" not in plain
