"""Any client format to any upstream format, through the real gateway and the simulator (issue 4).

The `openai` SDK talks to Anthropic- and Gemini-format upstreams, the `anthropic` SDK (`/v1/messages`) to
OpenAI-, Gemini- and Anthropic-format ones. Each answer is compared with what the upstream itself said
(`replay` asks the simulator again, in its own format: it is deterministic), streamed answers with
non-streamed ones, and the request the upstream received is checked in its own format.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletion

from faregate.providers.anthropic.request import JSON_INSTRUCTION
from faregate.simulator import behaviour
from faregate.simulator.model import REDACTED
from tests.conftest import Demo
from tests.server.helpers import ENVELOPE_KEYS, check_accounting, decimal_json
from tests.server.translation_helpers import (
    APIS,
    IMAGE_TOKENS,
    IMAGE_URL,
    PIXEL,
    TIME_ARGS,
    TIME_SCHEMA,
    TOOL_RESULT,
    UPSTREAMS,
    WEATHER_ARGS,
    WEATHER_SCHEMA,
    Native,
    Upstream,
    anth,
    anthropic_tool,
    channel_providers,
    check_anthropic_accounting,
    embedding_cost,
    last_body,
    oai,
    openai_tool,
    replay,
    sent_to,
    sse_data,
)

HELLO: Any = [{"role": "user", "content": "Hello there"}]
WEATHER = openai_tool("get_weather", WEATHER_SCHEMA)
TIME = openai_tool("get_time", TIME_SCHEMA)
A_WEATHER = anthropic_tool("get_weather", WEATHER_SCHEMA)
A_TIME = anthropic_tool("get_time", TIME_SCHEMA)
ASK_WEATHER = "What is the weather in Paris? Use get_weather."
MAX_TOKENS = 64
SECRET = "sim-key-"  # every stand-in upstream key starts so (serve.demo_env)

# Each format's own stop reasons, as the canonical (OpenAI) finish reason they mean.
CANONICAL_FINISH = {
    "openai": {"stop": "stop", "length": "length", "tool_calls": "tool_calls"},
    "anthropic": {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
    },
    "gemini": {"STOP": "stop", "MAX_TOKENS": "length"},
}


def native_finish(up: Upstream, native: Native) -> str:
    """What the upstream's stop reason means canonically (Gemini says STOP for a function call too)."""
    reason = CANONICAL_FINISH[up.api][native.finish]
    return "tool_calls" if up.api == "gemini" and native.calls and reason == "stop" else reason


NON_OPENAI = pytest.mark.parametrize("api", ["anthropic", "gemini"])


def exact(value: Any) -> Any:
    """JSON numbers an SDK parsed as floats, back to the decimals they were printed from."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    return value


def blocks(content: Any) -> list[Any]:
    """Anthropic message content as blocks (a string is one text block)."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def texts_by_role(up: Upstream, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of each turn of an upstream body, in canonical role names."""
    if up.api == "gemini":
        roles = {"user": "user", "model": "assistant"}
        return [(roles[c["role"]], "".join(p.get("text", "") for p in c["parts"])) for c in body["contents"]]
    if up.api == "anthropic":
        return [
            (m["role"], "".join(b.get("text", "") for b in blocks(m["content"]) if b["type"] == "text"))
            for m in body["messages"]
        ]
    return [(m["role"], m["content"]) for m in body["messages"]]


# -- the openai client -----------------------------------------------------------------------------------


async def chat(demo: Demo, up: Upstream, **kw: Any) -> tuple[ChatCompletion, dict[str, Any]]:
    """One non-streamed completion pinned to `up`: the SDK's object and the body, accounting checked."""
    kw.setdefault("messages", HELLO)
    async with oai(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(model=up.model, **kw)
    body = decimal_json(raw.http_response.text)
    routing = check_accounting(demo, body, raw.headers)
    assert (routing["provider"], routing["model"]) == (up.provider, up.model)
    return raw.parse(), body


@dataclass
class Streamed:
    """A streamed completion put back together from its chunks."""

    text: str
    calls: list[tuple[str, str, str]]  # (id, name, arguments text)
    finish: str | None
    usage: dict[str, Any]
    headers: dict[str, str]


async def chat_stream(demo: Demo, up: Upstream, **kw: Any) -> Streamed:
    kw.setdefault("messages", HELLO)
    async with oai(demo) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model=up.model, stream=True, stream_options={"include_usage": True}, **kw
        )
        chunks = [chunk async for chunk in raw.parse()]
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in chunks:
        assert chunk.model == up.model
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            for tc in choice.delta.tool_calls or ():
                slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                if tc.id:
                    assert not slot["id"], "a tool call's id comes once, in its first delta"
                    slot["id"] = tc.id
                if tc.function is not None:
                    slot["name"] += tc.function.name or ""
                    slot["arguments"] += tc.function.arguments or ""
            finish = choice.finish_reason or finish
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    final = exact({"usage": last.usage.model_dump(), "x-faregate": (last.model_extra or {})["x-faregate"]})
    routing = check_accounting(demo, final)
    assert (routing["provider"], routing["model"]) == (up.provider, up.model)
    return Streamed(
        "".join(text),
        [(s["id"], s["name"], s["arguments"]) for _, s in sorted(calls.items())],
        finish,
        final["usage"],
        dict(raw.headers),
    )


def assert_matches_native(completion: ChatCompletion, native: Native, up: Upstream) -> None:
    """The completion says what the upstream said: text, tool calls, tokens, finish reason."""
    choice = completion.choices[0]
    assert (choice.message.content or "") == native.text
    calls = [
        (c.id, c.function.name, json.loads(c.function.arguments))
        for c in choice.message.tool_calls or ()
        if c.type == "function"
    ]
    assert calls == list(native.calls)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        native.prompt_tokens,
        native.completion_tokens,
    )
    assert choice.finish_reason == native_finish(up, native)


@NON_OPENAI
async def test_plain_chat(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    completion, body = await chat(demo, up)
    [sent] = sent_to(demo, up)
    assert [r.provider for r in demo.sim.received] == [up.provider]
    if up.api == "anthropic":
        assert sent.path == "/anthropic/v1/messages"
        assert sent.headers["x-api-key"] == REDACTED and sent.headers["anthropic-version"]
        assert "Authorization" not in sent.headers
        upstream = sent.json()
        assert upstream["model"] == up.upstream_id
        assert [(m["role"], blocks(m["content"])) for m in upstream["messages"]] == [
            ("user", [{"type": "text", "text": "Hello there"}])
        ]
        assert upstream["max_tokens"] == 64000  # Anthropic needs max_tokens: the offering's max_output
        assert "system" not in upstream and "stream" not in upstream
    else:
        assert sent.path == "/google/v1beta/models/gemini-2.5-flash-lite:generateContent"
        assert sent.headers["x-goog-api-key"] == REDACTED and "key" not in sent.query
        assert sent.json() == {"contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]}
    native = await replay(demo, up)
    assert_matches_native(completion, native, up)
    assert completion.choices[0].message.content is not None
    assert completion.choices[0].message.content.startswith(f"{up.head} You said: Hello there. ")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.object == "chat.completion" and completion.model == up.model
    assert body["usage"]["total_tokens"] == native.prompt_tokens + native.completion_tokens
    again, _ = await chat(demo, up)  # deterministic: the same request, the same answer
    assert again.choices[0].message.content == completion.choices[0].message.content
    assert again.usage == completion.usage


@NON_OPENAI
async def test_system_message(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    system = "You are a terse assistant."
    completion, _ = await chat(demo, up, messages=[{"role": "system", "content": system}, *HELLO])
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        assert upstream["system"] == system
    else:
        assert upstream["systemInstruction"] == {"parts": [{"text": system}]}
    assert texts_by_role(up, upstream) == [("user", "Hello there")]  # the system text is not a turn
    assert_matches_native(completion, await replay(demo, up), up)
    plain, _ = await chat(demo, up)
    assert completion.usage is not None and plain.usage is not None
    assert completion.usage.prompt_tokens > plain.usage.prompt_tokens  # the system text was counted


@NON_OPENAI
async def test_multi_turn(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    messages = [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Tell me about rivers"},
    ]
    completion, _ = await chat(demo, up, messages=messages)
    assert texts_by_role(up, last_body(demo, up)) == [(m["role"], m["content"]) for m in messages]
    assert_matches_native(completion, await replay(demo, up), up)
    assert completion.choices[0].message.content is not None
    assert completion.choices[0].message.content.startswith(f"{up.head} You said: Tell me about rivers. ")


@NON_OPENAI
async def test_tool_round_trip(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    ask: Any = [{"role": "user", "content": ASK_WEATHER}]
    first, _ = await chat(demo, up, messages=ask, tools=[WEATHER, TIME])
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        assert upstream["tools"] == [
            {"name": "get_weather", "description": "get_weather tool", "input_schema": WEATHER_SCHEMA},
            {"name": "get_time", "description": "get_time tool", "input_schema": TIME_SCHEMA},
        ]
    else:
        [declared] = upstream["tools"]
        assert [d["name"] for d in declared["functionDeclarations"]] == ["get_weather", "get_time"]
    assert_matches_native(first, await replay(demo, up), up)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS

    turn: Any = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
        ],
    }
    result: Any = {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT}
    second, _ = await chat(demo, up, messages=[*ask, turn, result], tools=[WEATHER, TIME])
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        assert [m["role"] for m in upstream["messages"]] == ["user", "assistant", "user"]
        assert upstream["messages"][1]["content"] == [
            {"type": "tool_use", "id": call.id, "name": "get_weather", "input": WEATHER_ARGS}
        ]
        assert upstream["messages"][2]["content"] == [
            {"type": "tool_result", "tool_use_id": call.id, "content": TOOL_RESULT}
        ]
    else:
        assert [c["role"] for c in upstream["contents"]] == ["user", "model", "user"]
        assert upstream["contents"][1]["parts"] == [
            {"functionCall": {"name": "get_weather", "args": WEATHER_ARGS}}
        ]
        [response] = upstream["contents"][2]["parts"]
        assert response["functionResponse"]["name"] == "get_weather"  # Gemini matches results by name
        assert TOOL_RESULT in json.dumps(response["functionResponse"]["response"])
    assert_matches_native(second, await replay(demo, up), up)
    answer = second.choices[0]
    assert answer.finish_reason == "stop" and not answer.message.tool_calls
    assert answer.message.content is not None
    assert answer.message.content.startswith(f"{up.head} Tool result received: ")
    assert TOOL_RESULT in answer.message.content


@NON_OPENAI
async def test_forced_tool_choice(demo: Demo, api: str) -> None:
    """The user names no tool: only `tool_choice` makes the model call one, and the one it names."""
    up = UPSTREAMS[api]
    forced: Any = {"type": "function", "function": {"name": "get_time"}}
    completion, _ = await chat(demo, up, tools=[WEATHER, TIME], tool_choice=forced)
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        assert upstream["tool_choice"] == {"type": "tool", "name": "get_time"}
    else:
        assert upstream["toolConfig"] == {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
        }
    assert_matches_native(completion, await replay(demo, up), up)
    [call] = completion.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_time" and json.loads(call.function.arguments) == TIME_ARGS
    assert completion.choices[0].finish_reason == "tool_calls"
    auto, _ = await chat(demo, up, tools=[WEATHER, TIME])  # without the choice: a text answer
    assert auto.choices[0].finish_reason == "stop" and not auto.choices[0].message.tool_calls


@NON_OPENAI
@pytest.mark.parametrize("source", ["base64", "url"])
async def test_image_parts(demo: Demo, api: str, source: str) -> None:
    up = UPSTREAMS[api]
    url = f"data:image/png;base64,{PIXEL}" if source == "base64" else IMAGE_URL
    question = "What is in this picture?"
    content: Any = [{"type": "text", "text": question}, {"type": "image_url", "image_url": {"url": url}}]
    completion, _ = await chat(demo, up, messages=[{"role": "user", "content": content}])
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        image = (
            {"type": "base64", "media_type": "image/png", "data": PIXEL}
            if source == "base64"
            else {"type": "url", "url": IMAGE_URL}
        )
        [turn] = upstream["messages"]
        assert turn["content"] == [{"type": "text", "text": question}, {"type": "image", "source": image}]
    else:
        part = (
            {"inlineData": {"mimeType": "image/png", "data": PIXEL}}
            if source == "base64"
            else {"fileData": {"mimeType": "image/png", "fileUri": IMAGE_URL}}
        )
        assert upstream["contents"] == [{"role": "user", "parts": [{"text": question}, part]}]
    assert_matches_native(completion, await replay(demo, up), up)
    text_only, _ = await chat(demo, up, messages=[{"role": "user", "content": question}])
    assert completion.usage is not None and text_only.usage is not None
    assert completion.usage.prompt_tokens - text_only.usage.prompt_tokens == IMAGE_TOKENS


@NON_OPENAI
async def test_max_tokens_gives_length(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    ask: Any = [{"role": "user", "content": "Tell me a long story REPLY_TOKENS=40"}]
    completion, _ = await chat(demo, up, messages=ask, max_tokens=5)
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        assert upstream["max_tokens"] == 5
    else:
        assert upstream["generationConfig"] == {"maxOutputTokens": 5}
    native = await replay(demo, up)
    assert_matches_native(completion, native, up)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 5
    full, _ = await chat(demo, up, messages=ask)
    assert full.choices[0].finish_reason == "stop"
    assert full.usage is not None and full.usage.completion_tokens == 40
    assert (full.choices[0].message.content or "").startswith(completion.choices[0].message.content or "-")


@NON_OPENAI
async def test_stop_sequences(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    completion, _ = await chat(demo, up, stop=["said", "never-seen"])
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        assert upstream["stop_sequences"] == ["said", "never-seen"]
    else:
        assert upstream["generationConfig"] == {"stopSequences": ["said", "never-seen"]}
    assert_matches_native(completion, await replay(demo, up), up)
    assert completion.choices[0].message.content == f"{up.head} You "  # cut before the stop sequence
    assert completion.choices[0].finish_reason == "stop"


@NON_OPENAI
async def test_response_format_json_object(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    ask: Any = [{"role": "user", "content": "Describe a river as json"}]
    completion, _ = await chat(demo, up, messages=ask, response_format={"type": "json_object"})
    upstream = last_body(demo, up)
    assert_matches_native(completion, await replay(demo, up), up)
    content = completion.choices[0].message.content or ""
    if up.api == "anthropic":
        # Anthropic has no JSON mode: the gateway asks in the system prompt (the simulator does not obey).
        assert upstream["system"] == JSON_INSTRUCTION
        assert "response_format" not in upstream
    else:
        assert upstream["generationConfig"] == {"responseMimeType": "application/json"}
        answer = json.loads(content)
        assert list(answer) == ["answer"]
        assert answer["answer"].startswith(f"{up.head} You said: Describe a river as json. ")


@NON_OPENAI
async def test_sampling_params_follow_the_tables(demo: Demo, api: str) -> None:
    """Renames and clamps: Anthropic allows temperature 0..1 (OpenAI 0..2), `user` is its metadata.user_id."""
    up = UPSTREAMS[api]
    await chat(demo, up, temperature=1.5, top_p=0.5, max_completion_tokens=7, user="user-1")
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        assert (upstream["temperature"], upstream["top_p"], upstream["max_tokens"]) == (1.0, 0.5, 7)
        assert upstream["metadata"] == {"user_id": "user-1"}
        assert "max_completion_tokens" not in upstream and "user" not in upstream
    else:
        assert upstream["generationConfig"] == {"maxOutputTokens": 7, "temperature": 1.5, "topP": 0.5}
        assert "user" not in upstream  # Gemini has no end-user field


@NON_OPENAI
async def test_stream_text_equals_non_streamed(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    messages: Any = [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Tell me about rivers"},
    ]
    completion, body = await chat(demo, up, messages=messages)
    streamed = await chat_stream(demo, up, messages=messages)
    sent = sent_to(demo, up)[-1]
    if up.api == "anthropic":
        assert sent.json()["stream"] is True
    else:
        assert sent.path.endswith(":streamGenerateContent") and sent.query["alt"] == "sse"
    native = await replay(demo, up)
    assert streamed.text == completion.choices[0].message.content == native.text
    assert streamed.finish == completion.choices[0].finish_reason == "stop"
    assert streamed.calls == []
    for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cost"):
        assert streamed.usage[key] == body["usage"][key]
    assert streamed.headers["x-faregate-provider"] == up.provider


# -- the anthropic client --------------------------------------------------------------------------------


async def create(demo: Demo, up: Upstream, **kw: Any) -> tuple[anthropic.types.Message, dict[str, Any]]:
    """`messages.create` pinned to `up`: the SDK's message and the body, accounting checked."""
    kw.setdefault("messages", HELLO)
    kw.setdefault("max_tokens", MAX_TOKENS)
    async with anth(demo) as c:
        raw = await c.messages.with_raw_response.create(model=up.model, **kw)
    body = decimal_json(raw.http_response.text)
    routing = check_anthropic_accounting(demo, body, raw.headers)
    assert (routing["provider"], routing["model"]) == (up.provider, up.model)
    return await raw.parse(), body


@dataclass
class StreamedMessage:
    text: str  # from `text_stream`
    final: anthropic.types.Message  # `get_final_message()`
    tool_json: dict[int, str]  # content block index -> the `input_json` events' partial JSON, joined
    starts: dict[int, Any]  # content block index -> its `content_block_start` block


async def stream_message(demo: Demo, up: Upstream, **kw: Any) -> StreamedMessage:
    kw.setdefault("messages", HELLO)
    kw.setdefault("max_tokens", MAX_TOKENS)
    tool_json: dict[int, str] = {}
    starts: dict[int, Any] = {}
    async with anth(demo) as c, c.messages.stream(model=up.model, **kw) as s:
        index = -1
        text: list[str] = []
        async for ev in s:
            if ev.type == "content_block_start":
                index = ev.index
                starts[index] = ev.content_block
            elif ev.type == "input_json":
                tool_json[index] = tool_json.get(index, "") + ev.partial_json
            elif ev.type == "text":
                text.append(ev.text)
        final = await s.get_final_message()
    return StreamedMessage("".join(text), final, tool_json, starts)


async def stream_text(demo: Demo, up: Upstream, **kw: Any) -> tuple[str, anthropic.types.Message]:
    """`messages.stream(...)` read through `text_stream`, then `get_final_message()`."""
    kw.setdefault("messages", HELLO)
    kw.setdefault("max_tokens", MAX_TOKENS)
    async with anth(demo) as c, c.messages.stream(model=up.model, **kw) as s:
        pieces = [piece async for piece in s.text_stream]
        final = await s.get_final_message()
    return "".join(pieces), final


def message_text(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def content_of(message: anthropic.types.Message) -> list[dict[str, Any]]:
    """The content blocks as plain dicts (a streamed final message has Parsed* blocks with one more field)."""
    return [{k: v for k, v in b.model_dump().items() if k != "parsed_output"} for b in message.content]


def message_calls(message: anthropic.types.Message) -> list[tuple[str, str, Any]]:
    return [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]


def assert_message_matches_native(message: anthropic.types.Message, native: Native, up: Upstream) -> None:
    assert message_text(message) == native.text
    assert message_calls(message) == list(native.calls)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (
        native.prompt_tokens,
        native.completion_tokens,
    )
    assert message.stop_reason is not None
    assert CANONICAL_FINISH["anthropic"][message.stop_reason] == native_finish(up, native)


async def test_messages_create_on_openai_upstream(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    message, body = await create(demo, up)
    [sent] = sent_to(demo, up)
    assert sent.path == "/openai/v1/chat/completions" and sent.headers["Authorization"] == REDACTED
    assert sent.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello there"}],
        "max_tokens": MAX_TOKENS,
    }
    assert_message_matches_native(message, await replay(demo, up), up)
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.model == up.model
    assert [b.type for b in message.content] == ["text"]
    assert message_text(message).startswith(f"{up.head} You said: Hello there. ")
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert body["usage"]["cache_read_input_tokens"] == body["usage"]["cache_creation_input_tokens"] == 0


@pytest.mark.parametrize("system", ["You are terse.", [{"type": "text", "text": "You are terse."}]])
async def test_messages_system_and_multi_turn_on_openai_upstream(demo: Demo, system: Any) -> None:
    up = UPSTREAMS["openai"]
    messages: Any = [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi! How can I help?"}]},
        {"role": "user", "content": "Tell me about rivers"},
    ]
    message, _ = await create(demo, up, system=system, messages=messages)
    assert last_body(demo, up)["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Tell me about rivers"},
    ]
    assert_message_matches_native(message, await replay(demo, up), up)
    assert message_text(message).startswith(f"{up.head} You said: Tell me about rivers. ")


async def test_messages_stream_on_openai_upstream(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    message, _ = await create(demo, up)
    text, final = await stream_text(demo, up)
    assert last_body(demo, up)["stream"] is True
    assert text == message_text(message) == message_text(final)
    assert content_of(final) == content_of(message)
    assert (final.stop_reason, final.stop_sequence, final.model) == ("end_turn", None, up.model)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )
    assert_message_matches_native(final, await replay(demo, up), up)


async def test_messages_stream_wire_events_carry_cost(demo: Demo) -> None:
    """The raw SSE sequence, as Anthropic sends it; the closing `message_delta` carries cost and routing."""
    up = UPSTREAMS["openai"]
    message, body = await create(demo, up)
    request = {"model": up.model, "max_tokens": MAX_TOKENS, "messages": HELLO, "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{demo.url}/v1/messages", json=request, headers={"x-api-key": "x"}) as resp,
    ):
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        events = sse_data(await resp.text())
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert all(data["type"] == name for name, data in events)
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert "".join(d["text"] for d in deltas) == message_text(message)
    closing = events[-2][1]
    assert closing["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    routing = check_anthropic_accounting(demo, closing)
    assert routing["provider"] == up.provider
    assert closing["usage"] == body["usage"]


async def test_tool_use_round_trip_on_openai_upstream(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    ask: Any = [{"role": "user", "content": ASK_WEATHER}]
    first, _ = await create(demo, up, messages=ask, tools=[A_WEATHER, A_TIME])
    assert last_body(demo, up)["tools"] == [WEATHER, TIME]
    assert_message_matches_native(first, await replay(demo, up), up)
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == WEATHER_ARGS and use.id

    turn: Any = {"role": "assistant", "content": [b.model_dump() for b in first.content]}
    result: Any = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": use.id, "content": TOOL_RESULT}],
    }
    second, _ = await create(demo, up, messages=[*ask, turn, result], tools=[A_WEATHER, A_TIME])
    upstream = last_body(demo, up)["messages"]
    assert [m["role"] for m in upstream] == ["user", "assistant", "tool"]
    assert upstream[1]["tool_calls"] == [
        {
            "id": use.id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(WEATHER_ARGS, separators=(",", ":"))},
        }
    ]
    assert (upstream[2]["tool_call_id"], upstream[2]["content"]) == (use.id, TOOL_RESULT)
    assert_message_matches_native(second, await replay(demo, up), up)
    assert second.stop_reason == "end_turn"
    assert message_text(second) == f"{up.head} Tool result received: {TOOL_RESULT}"


async def test_forced_tool_on_openai_upstream(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    message, _ = await create(
        demo, up, tools=[A_WEATHER, A_TIME], tool_choice={"type": "tool", "name": "get_time"}
    )
    assert last_body(demo, up)["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert message.stop_reason == "tool_use"
    assert [(name, args) for _, name, args in message_calls(message)] == [("get_time", TIME_ARGS)]


async def test_image_block_on_openai_upstream(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    question = "What is in this picture?"
    content: Any = [
        {"type": "text", "text": question},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
    ]
    message, _ = await create(demo, up, messages=[{"role": "user", "content": content}])
    [turn] = last_body(demo, up)["messages"]
    assert turn["content"] == [
        {"type": "text", "text": question},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]
    assert_message_matches_native(message, await replay(demo, up), up)
    text_only, _ = await create(demo, up, messages=[{"role": "user", "content": question}])
    assert message.usage.input_tokens - text_only.usage.input_tokens == IMAGE_TOKENS


@pytest.mark.parametrize("api", APIS)
async def test_stop_sequences_are_named_whatever_the_upstream(demo: Demo, api: str) -> None:
    """OpenAI and Gemini say only "stop": faregate matches the sequences itself (not sent to them), so
    the Anthropic client is told which one ended the answer, as Anthropic itself tells it."""
    up = UPSTREAMS[api]
    message, _ = await create(demo, up, stop_sequences=["nothing-like-this", "said"])
    sent = last_body(demo, up)
    if api == "anthropic":
        assert sent["stop_sequences"] == ["nothing-like-this", "said"]
    else:
        assert "stop" not in sent and "stopSequences" not in sent.get("generationConfig", {})
    assert message_text(message) == f"{up.head} You "
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "said")
    # streamed: the same text, the same stop reason, whichever delta the sequence straddles
    async with (
        anth(demo) as c,
        c.messages.stream(
            model=up.model,
            max_tokens=MAX_TOKENS,
            messages=HELLO,
            stop_sequences=["nothing-like-this", "said"],
        ) as stream,
    ):
        final = await stream.get_final_message()
    assert message_text(final) == f"{up.head} You "
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "said")


async def test_a_stop_sequence_that_never_comes_ends_the_turn(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    message, _ = await create(demo, up, stop_sequences=["nothing-like-this"])
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message_text(message).startswith(f"{up.head} You said: Hello there.")


async def test_max_tokens_on_openai_upstream(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    ask: Any = [{"role": "user", "content": "Tell me a long story REPLY_TOKENS=40"}]
    message, _ = await create(demo, up, messages=ask, max_tokens=5)
    assert last_body(demo, up)["max_tokens"] == 5
    assert_message_matches_native(message, await replay(demo, up), up)
    assert message.stop_reason == "max_tokens"
    assert 0 < message.usage.output_tokens <= 5


@pytest.mark.parametrize("api", ["gemini", "anthropic"])
async def test_anthropic_client_on_other_upstreams(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    message, _ = await create(demo, up, system="You are terse.")
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        assert upstream["system"] == "You are terse." and upstream["max_tokens"] == MAX_TOKENS
    else:
        assert upstream["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
        assert upstream["generationConfig"] == {"maxOutputTokens": MAX_TOKENS}
    assert_message_matches_native(message, await replay(demo, up), up)
    assert message_text(message).startswith(f"{up.head} You said: Hello there. ")
    assert message.stop_reason == "end_turn"
    text, final = await stream_text(demo, up, system="You are terse.")
    assert text == message_text(final) == message_text(message)
    assert final.stop_reason == message.stop_reason
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )


async def test_stop_sequence_reason_survives_anthropic_to_anthropic(demo: Demo) -> None:
    up = UPSTREAMS["anthropic"]
    message, _ = await create(demo, up, stop_sequences=["said"])
    native = await replay(demo, up)
    assert (native.finish, native.raw["stop_sequence"]) == ("stop_sequence", "said")
    assert message_text(message) == native.text == f"{up.head} You "
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "said")


@pytest.mark.parametrize(
    "api",
    ["anthropic", "gemini"],
)
async def test_tool_error_result_stays_an_error(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    ask: Any = [{"role": "user", "content": ASK_WEATHER}]
    first, _ = await create(demo, up, messages=ask, tools=[A_WEATHER])
    [(use_id, _, _)] = message_calls(first)
    failed: Any = {
        "type": "tool_result",
        "tool_use_id": use_id,
        "content": "city not found",
        "is_error": True,
    }
    turn: Any = {"role": "assistant", "content": content_of(first)}
    second, _ = await create(
        demo, up, messages=[*ask, turn, {"role": "user", "content": [failed]}], tools=[A_WEATHER]
    )
    upstream = last_body(demo, up)
    if up.api == "anthropic":
        assert upstream["messages"][2]["content"] == [failed]
    else:
        response = upstream["contents"][2]["parts"][0]["functionResponse"]["response"]
        assert "error" in response and "city not found" in json.dumps(response)
    assert second.stop_reason == "end_turn" and "city not found" in message_text(second)


async def test_messages_missing_is_anthropic_invalid_request(demo: Demo) -> None:
    async with anth(demo) as c:
        with pytest.raises(anthropic.BadRequestError) as missing:
            await c.post(
                "/v1/messages", cast_to=object, body={"model": "openai/gpt-4o-mini", "max_tokens": 9}
            )
        with pytest.raises(anthropic.BadRequestError) as empty:
            await c.messages.create(model="openai/gpt-4o-mini", max_tokens=9, messages=[])
    for err in (missing.value, empty.value):
        assert err.status_code == 400
        body = err.response.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert "messages" in body["error"]["message"]
        assert err.body == body
    assert demo.sim.received == ()  # a bad request never reaches an upstream


async def test_unknown_model_is_anthropic_not_found(demo: Demo) -> None:
    async with anth(demo) as c:
        with pytest.raises(anthropic.NotFoundError) as caught:
            await c.messages.create(model="nobody/no-such-model", max_tokens=9, messages=HELLO)
    assert caught.value.status_code == 404
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "nobody/no-such-model" in body["error"]["message"]
    assert demo.sim.received == ()


# -- streaming with tools, every direction ---------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_openai_client_streams_tool_calls(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    ask: Any = [{"role": "user", "content": ASK_WEATHER}]
    completion, body = await chat(demo, up, messages=ask, tools=[WEATHER, TIME])
    streamed = await chat_stream(demo, up, messages=ask, tools=[WEATHER, TIME])
    native = await replay(demo, up)
    assert_matches_native(completion, native, up)
    [call] = completion.choices[0].message.tool_calls or []
    assert call.type == "function"
    [(call_id, name, arguments)] = streamed.calls
    assert (call_id, name) == (call.id, call.function.name) == (native.calls[0][0], "get_weather")
    assert json.loads(arguments) == json.loads(call.function.arguments) == WEATHER_ARGS
    assert streamed.finish == completion.choices[0].finish_reason == "tool_calls"
    assert streamed.text == ""
    for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cost"):
        assert streamed.usage[key] == body["usage"][key]


@pytest.mark.parametrize("api", APIS)
async def test_anthropic_client_streams_tool_use(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    ask: Any = [{"role": "user", "content": ASK_WEATHER}]
    message, _ = await create(demo, up, messages=ask, tools=[A_WEATHER, A_TIME])
    streamed = await stream_message(demo, up, messages=ask, tools=[A_WEATHER, A_TIME])
    assert_message_matches_native(message, await replay(demo, up), up)
    [(use_id, name, args)] = message_calls(message)
    assert (name, args) == ("get_weather", WEATHER_ARGS)
    [(index, partial)] = streamed.tool_json.items()
    assert json.loads(partial) == args  # the input_json events put together
    start = streamed.starts[index]
    assert (start.type, start.id, start.name, start.input) == ("tool_use", use_id, name, {})
    assert content_of(streamed.final) == content_of(message)
    assert streamed.final.stop_reason == message.stop_reason == "tool_use"
    assert (streamed.final.usage.input_tokens, streamed.final.usage.output_tokens) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )


# -- upstream errors in the client's format --------------------------------------------------------------


async def ask_as(demo: Demo, client: str, up: Upstream, stream: bool) -> None:
    """One small request in `client`'s format; raises the SDK's error."""
    if client == "openai":
        async with oai(demo) as c:
            if stream:
                async for _ in await c.chat.completions.create(model=up.model, messages=HELLO, stream=True):
                    pass
            else:
                await c.chat.completions.create(model=up.model, messages=HELLO)
    else:
        async with anth(demo) as c:
            if stream:
                async with c.messages.stream(model=up.model, messages=HELLO, max_tokens=MAX_TOKENS) as s:
                    await s.get_final_message()
            else:
                await c.messages.create(model=up.model, messages=HELLO, max_tokens=MAX_TOKENS)


CLIENT_ERRORS = {"openai": openai.APIStatusError, "anthropic": anthropic.APIStatusError}


def envelope(client: str, err: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and the inner error object of an SDK's error, checked to be the client format's envelope."""
    assert isinstance(err, openai.APIStatusError | anthropic.APIStatusError)
    assert isinstance(err, CLIENT_ERRORS[client])
    body = err.response.json()
    assert SECRET not in err.response.text
    if client == "openai":
        assert set(body) == {"error"} and set(body["error"]) == ENVELOPE_KEYS
    else:
        assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}
    inner: dict[str, Any] = body["error"]
    assert SECRET not in inner["message"]
    return err.status_code, inner


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("client", ["openai", "anthropic"])
async def test_upstream_400_in_client_envelope(demo: Demo, client: str, api: str, stream: bool) -> None:
    up = UPSTREAMS[api]
    demo.sim.fail(up.provider, 400)
    with pytest.raises(CLIENT_ERRORS[client]) as caught:
        await ask_as(demo, client, up, stream)
    status, inner = envelope(client, caught.value)
    assert status == 400
    assert inner["type"] == "invalid_request_error"
    assert inner["message"].startswith(f"{up.provider}: ")  # the upstream's own message, said to be theirs
    assert f"Simulated 400 from {up.provider}" in inner["message"]
    assert [r.provider for r in demo.sim.received] == [up.provider]  # the request's fault: not retried


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("client", ["openai", "anthropic"])
async def test_every_channel_failing_is_502_in_client_envelope(demo: Demo, client: str, api: str) -> None:
    up = UPSTREAMS[api]
    providers = channel_providers(demo, up.model)
    for provider in providers:
        demo.sim.fail(provider, 500)
    with pytest.raises(CLIENT_ERRORS[client]) as caught:
        await ask_as(demo, client, up, stream=False)
    status, inner = envelope(client, caught.value)
    assert status == 502
    if client == "openai":
        assert (inner["type"], inner["code"]) == ("upstream_error", "all_channels_failed")
    else:
        assert inner["type"] == "api_error"
    assert inner["message"].startswith("every channel failed")
    table = demo.runtime.holder.current.table
    for ch in table.channels.values():
        if ch.model_id == up.model:
            assert ch.id in inner["message"]  # each attempt is named
    assert sorted(r.provider for r in demo.sim.received) == sorted(providers)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("client", ["openai", "anthropic"])
async def test_stream_cut_short_ends_with_an_error_event(demo: Demo, client: str, api: str) -> None:
    """The upstream drops the connection mid-stream: the status is already 200, so the stream ends with an
    error event in the client's format, which its SDK raises."""
    up = UPSTREAMS[api]
    demo.sim.drop_stream(up.provider, 6)  # past the opening events: text has flowed
    ask: Any = [{"role": "user", "content": "Tell me a long story REPLY_TOKENS=30"}]
    received: list[str] = []
    if client == "openai":
        async with oai(demo) as c:
            with pytest.raises(openai.APIError) as caught:
                async for chunk in await c.chat.completions.create(model=up.model, messages=ask, stream=True):
                    received.extend(ch.delta.content or "" for ch in chunk.choices)
        inner: Any = caught.value.body
        assert set(inner) == ENVELOPE_KEYS
    else:
        async with anth(demo) as c:
            with pytest.raises(anthropic.APIStatusError) as caught_a:
                async with c.messages.stream(model=up.model, messages=ask, max_tokens=MAX_TOKENS) as s:
                    async for piece in s.text_stream:
                        received.append(piece)
        body: Any = caught_a.value.body
        assert body["type"] == "error" and body["error"]["type"] == "api_error"
        inner = body["error"]
    assert "".join(received).startswith(up.head)  # what came before the drop reached the client
    assert inner["message"].startswith(f"{up.provider}: ") and SECRET not in inner["message"]


# -- embeddings ------------------------------------------------------------------------------------------

EMBED_INPUTS = ["the quick brown fox", "a river of stone"]
EMBED_MODEL = "openai/text-embedding-3-small"


def expected_vectors() -> list[list[float]]:
    dims = behaviour.default_dimensions("text-embedding-3-small")
    return [behaviour.embed(text, dims) for text in EMBED_INPUTS]


def check_embedding_usage(demo: Demo, body: dict[str, Any]) -> None:
    usage = body["usage"]
    assert usage["prompt_tokens"] == usage["total_tokens"] > 0
    assert usage["cost"] == embedding_cost(demo, EMBED_MODEL, usage["prompt_tokens"]) > 0
    routing = body["x-faregate"]["routing"]
    assert (routing["provider"], routing["model"]) == ("openai", EMBED_MODEL)


@pytest.mark.parametrize("model", [EMBED_MODEL, "embed"])
async def test_embeddings_base64_by_default(demo: Demo, model: str) -> None:
    async with oai(demo) as c:
        raw = await c.embeddings.with_raw_response.create(model=model, input=EMBED_INPUTS)
    body = decimal_json(raw.http_response.text)
    check_embedding_usage(demo, body)
    if model == "embed":
        assert body["x-faregate"]["routing"]["rule"] == "embeddings"
    assert body["object"] == "list" and body["model"] == EMBED_MODEL
    decoded = []
    for i, item in enumerate(body["data"]):
        assert (item["object"], item["index"]) == ("embedding", i)
        assert isinstance(item["embedding"], str)  # the SDK asked for base64
        packed = base64.b64decode(item["embedding"])
        decoded.append(list(struct.unpack(f"<{len(packed) // 4}f", packed)))
    as_float32 = [
        list(struct.unpack(f"<{len(v)}f", struct.pack(f"<{len(v)}f", *v))) for v in expected_vectors()
    ]
    assert decoded == as_float32
    parsed = raw.parse()
    assert [d.embedding for d in parsed.data] == decoded  # and the SDK decodes them the same
    [sent] = [r.json() for r in demo.sim.received_for("openai")]
    assert sent["input"] == EMBED_INPUTS and sent["model"] == "text-embedding-3-small"
    assert sent.get("encoding_format", "float") == "float"


async def test_embeddings_float(demo: Demo) -> None:
    async with oai(demo) as c:
        raw = await c.embeddings.with_raw_response.create(
            model="embed", input=EMBED_INPUTS, encoding_format="float"
        )
    body = json.loads(raw.http_response.text)
    check_embedding_usage(demo, decimal_json(raw.http_response.text))
    assert [item["embedding"] for item in body["data"]] == expected_vectors()
    assert [d.embedding for d in raw.parse().data] == expected_vectors()
