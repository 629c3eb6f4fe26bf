"""OpenAI wire format: golden payloads, request rendering, inbound validation, error classification,
rendering for clients, the stream decoder and encoder, and round trips (hypothesis). Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolArgsDelta,
    ToolCall,
    ToolCallStart,
    ToolChoice,
    Usage,
    collect_stream,
)
from faregate.errors import InvalidRequest, RateLimited
from faregate.providers.base import Target
from faregate.providers.openai import OpenAIAdapter, OpenAIInbound, OpenAIStreamDecoder
from faregate.providers.registry import ADAPTERS, INBOUND, adapter_for
from faregate.providers.sse import SseDecoder, SseEvent
from faregate.providers.wire import mask_secrets

DATA = Path(__file__).parent.parent / "data" / "openai"
ADAPTER = OpenAIAdapter()
INBOUND_OPENAI = OpenAIInbound()
TARGET = Target("https://api.openai.com/v1/", "gpt-4o-mini", api_key="sk-test-123456789")
USER_HI: dict[str, Any] = {"role": "user", "content": "hi"}


def golden(name: str) -> bytes:
    return (DATA / name).read_bytes()


def sse_events(raw: bytes, cuts: list[int] | None = None) -> list[SseEvent]:
    decoder = SseDecoder()
    edges = [0, *(cuts or []), len(raw)]
    return [ev for a, b in pairwise(edges) for ev in decoder.feed(raw[a:b])] + decoder.close()


def decode(raw: bytes, cuts: list[int] | None = None) -> list[StreamEvent]:
    decoder = ADAPTER.stream_decoder()
    return [out for ev in sse_events(raw, cuts) for out in decoder.feed(ev)] + decoder.close()


def request_body(req: ChatRequest, target: Target = TARGET) -> dict[str, Any]:
    call = ADAPTER.chat_request(req, target)
    assert call.body is not None
    body: dict[str, Any] = json.loads(call.body)
    return body


def parse(body: dict[str, Any]) -> tuple[ChatRequest, dict[str, Any]]:
    return INBOUND_OPENAI.parse_chat(body)


# --- golden responses -----------------------------------------------------------------------------

CHAT_GOLDEN = ChatResponse(
    id="chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    model="gpt-4o-mini-2024-07-18",
    text="Hello! How can I assist you today?",
    finish_reason="stop",
    usage=Usage(prompt_tokens=1219, completion_tokens=10, cache_read_tokens=1024),
    created=1741569952,
)
TOOLS_GOLDEN = ChatResponse(
    id="chatcmpl-BDzLhCPnUQoIy6pYZ0Npb2wXfXtiD",
    model="gpt-4o-2024-08-06",
    text="",
    tool_calls=(
        ToolCall(
            "call_DdmO9pD3xa9XTPNJ32zg2hcA",
            "get_current_weather",
            '{"location":"Boston, MA","unit":"celsius"}',
        ),
        ToolCall(
            "call_ABPQ7NY1LzFUsQKRHivh7MqJ",
            "get_current_weather",
            '{"location":"Paris, France","unit":"celsius"}',
        ),
    ),
    finish_reason="tool_calls",
    usage=Usage(prompt_tokens=82, completion_tokens=52),
    created=1742570533,
)


def test_golden_chat_completion_parses() -> None:
    assert ADAPTER.parse_chat_response(golden("chat_completion.json")) == CHAT_GOLDEN


def test_golden_tool_calls_parse() -> None:
    assert ADAPTER.parse_chat_response(golden("chat_completion_tool_calls.json")) == TOOLS_GOLDEN


def test_golden_embeddings_parse_in_index_order() -> None:
    resp = ADAPTER.parse_embeddings_response(golden("embeddings.json"))
    assert resp.model == "text-embedding-3-small"
    assert resp.vectors == ((0.0023064255, -0.009327292, -0.0028842222), (-0.0114, 0.0217, 0.0031))
    assert resp.usage == Usage(prompt_tokens=8)
    CreateEmbeddingResponse.model_validate_json(golden("embeddings.json"))


@pytest.mark.parametrize(
    ("wire", "canonical"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "content_filter"),
        ("function_call", "tool_calls"),
        ("eos", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons_map_to_canonical(wire: str | None, canonical: FinishReason) -> None:
    body = {"choices": [{"message": {"content": "x"}, "finish_reason": wire}]}
    assert ADAPTER.parse_chat_response(json.dumps(body).encode()).finish_reason == canonical


def test_null_content_refusal_and_missing_usage() -> None:
    body = {"id": "x", "model": "m", "choices": [{"message": {"content": None, "refusal": "I can't."}}]}
    resp = ADAPTER.parse_chat_response(json.dumps(body).encode())
    assert (resp.text, resp.usage, resp.tool_calls) == ("I can't.", None, ())


def test_deepseek_cache_hits_and_object_arguments() -> None:
    body = {
        "choices": [
            {"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}]}}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "prompt_cache_hit_tokens": 8},
    }
    resp = ADAPTER.parse_chat_response(json.dumps(body).encode())
    assert resp.usage == Usage(10, 2, 8)
    assert resp.tool_calls == (ToolCall("c", "f", '{"a":1}'),)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"choices": []}',
        b'{"choices": [{}]}',
        b'{"choices": [{"message": {"content": 3}}]}',
        b'{"choices": [{"message": {"tool_calls": [{"id": "c"}]}}]}',
        b'{"choices": [{"message": {"tool_calls": {}}}]}',
        b"\xff\xfe",
    ],
)
def test_malformed_chat_responses_raise_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        ADAPTER.parse_chat_response(body)


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"data": [{"index": 0, "embedding": "AAAA"}]}', b'{"data": [{"embedding": ["x"]}]}'],
)
def test_malformed_embeddings_raise_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        ADAPTER.parse_embeddings_response(body)


# --- rendering requests ---------------------------------------------------------------------------


def test_chat_request_url_headers_and_compact_body() -> None:
    req = ChatRequest(model="auto", messages=(Message("user", (TextPart("hi"),)),), temperature=0.5)
    call = ADAPTER.chat_request(req, TARGET)
    assert (call.method, call.url) == ("POST", "https://api.openai.com/v1/chat/completions")
    assert call.headers == {"Authorization": "Bearer sk-test-123456789", "Content-Type": "application/json"}
    assert (
        call.body == b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0.5}'
    )
    assert call.dropped == ()
    assert "sk-test" not in repr(call)


def test_no_authorization_header_without_a_key() -> None:
    req = ChatRequest(model=None, messages=(Message("user", (TextPart("hi"),)),))
    call = ADAPTER.chat_request(req, Target("http://127.0.0.1:11434/v1", "llama3.2"))
    assert call.url == "http://127.0.0.1:11434/v1/chat/completions"
    assert dict(call.headers) == {"Content-Type": "application/json"}


@pytest.mark.parametrize("include_usage", [False, True])
def test_streaming_always_asks_for_usage(include_usage: bool) -> None:
    req = ChatRequest(model=None, messages=(Message("user"),), stream=True, include_usage=include_usage)
    body = request_body(req)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_full_request_renders_every_field() -> None:
    req = ChatRequest(
        model="auto",
        messages=(
            Message("system", (TextPart("be brief"),)),
            Message(
                "user",
                (
                    TextPart("what is this?"),
                    ImagePart(data_b64="iVBORw0KGgo=", media_type="image/png"),
                    ImagePart(url="https://example.com/cat.jpg", detail="low"),
                ),
                name="ann",
            ),
            Message("assistant", (), tool_calls=(ToolCall("call_1", "lookup", '{"q":"cat"}'),)),
            Message("tool", (TextPart("a cat"),), tool_call_id="call_1"),
        ),
        tools=(Tool("lookup", "search", {"type": "object", "properties": {"q": {"type": "string"}}}),),
        tool_choice=ToolChoice("tool", "lookup"),
        response_format=ResponseFormat("json_object"),
        max_tokens=100,
        top_p=0.9,
        stop=("END",),
        user="u-1",
    )
    assert request_body(req) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "name": "ann",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q":"cat"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "search",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "response_format": {"type": "json_object"},
        "max_tokens": 100,
        "top_p": 0.9,
        "stop": ["END"],
        "user": "u-1",
    }


@pytest.mark.parametrize("mode", ["auto", "none", "required"])
def test_tool_choice_modes_render_as_strings(mode: Any) -> None:
    req = ChatRequest(
        model=None, messages=(Message("user"),), tools=(Tool("f"),), tool_choice=ToolChoice(mode)
    )
    body = request_body(req)
    assert body["tool_choice"] == mode
    assert body["tools"] == [{"type": "function", "function": {"name": "f"}}]


def test_extra_is_forwarded_when_the_client_spoke_openai() -> None:
    extra = {"seed": 7, "logprobs": True, "n": 2, "max_completion_tokens": 50, "parallel_tool_calls": False}
    req = ChatRequest(model=None, messages=(Message("user"),), max_tokens=50, extra=extra)
    call = ADAPTER.chat_request(req, TARGET)
    body = json.loads(call.body or b"")
    assert {k: body[k] for k in extra} == extra
    assert "max_tokens" not in body
    assert call.dropped == ()


def test_extra_is_dropped_and_noted_for_other_sources() -> None:
    req = ChatRequest(
        model=None, messages=(Message("user"),), max_tokens=50, source_api="anthropic", extra={"top_k": 5}
    )
    call = ADAPTER.chat_request(req, TARGET)
    body = json.loads(call.body or b"")
    assert "top_k" not in body and body["max_tokens"] == 50
    assert call.dropped == ("top_k",)


SAMPLING = {"min_p": 0.1, "top_a": 0.2, "repetition_penalty": 1.1}


def test_declared_sampling_fields_reach_an_upstream_that_takes_them() -> None:
    """A provider's `params` (vLLM, Together, OpenRouter): those it names are sent as the client sent them,
    `top_k` included; the rest are dropped and noted, as they always are for OpenAI itself."""
    req = ChatRequest(model=None, messages=(Message("user"),), top_k=40, extra=dict(SAMPLING))
    declared = replace(TARGET, params=frozenset({"top_k", "min_p", "repetition_penalty"}))
    call = ADAPTER.chat_request(req, declared)
    body = json.loads(call.body or b"")
    assert (body["top_k"], body["min_p"], body["repetition_penalty"]) == (40, 0.1, 1.1)
    assert "top_a" not in body and call.dropped == ("top_a",)
    plain = ADAPTER.chat_request(req, TARGET)
    assert not {"top_k", *SAMPLING} & json.loads(plain.body or b"").keys()
    assert set(plain.dropped) == {"top_k", *SAMPLING}


def test_declared_sampling_fields_from_another_format_and_in_supported_parameters() -> None:
    req = ChatRequest(
        model=None, messages=(Message("user"),), top_k=5, source_api="anthropic", extra={"min_p": 0.3}
    )
    call = ADAPTER.chat_request(req, replace(TARGET, params=frozenset({"top_k", "min_p"})))
    body = json.loads(call.body or b"")
    assert (body["top_k"], body["min_p"], call.dropped) == (5, 0.3, ())
    assert {"top_k", "min_p"} <= ADAPTER.parameters("llama", frozenset({"top_k", "min_p"}))
    assert not {"top_k", "min_p"} & ADAPTER.parameters("gpt-4o-mini")
    # only a format that forwards them counts them
    assert "min_p" not in adapter_for("anthropic").parameters("claude-haiku-4-5", frozenset({"min_p"}))


def test_images_outside_user_messages_are_dropped_and_noted() -> None:
    image = ImagePart(data_b64="AAAA", media_type="image/png")
    req = ChatRequest(
        model=None,
        messages=(Message("tool", (TextPart("see"), image), tool_call_id="t"),),
        source_api="anthropic",
    )
    call = ADAPTER.chat_request(req, TARGET)
    assert json.loads(call.body or b"")["messages"] == [
        {"role": "tool", "tool_call_id": "t", "content": "see"}
    ]
    assert call.dropped == ("tool message image",)


def test_request_body_keeps_unicode_and_survives_lone_surrogates() -> None:
    req = ChatRequest(model=None, messages=(Message("user", (TextPart("héllo ✓"),)),))
    assert "héllo ✓".encode() in (ADAPTER.chat_request(req, TARGET).body or b"")
    req = ChatRequest(model=None, messages=(Message("user", (TextPart("bad \ud800"),)),))
    assert json.loads(ADAPTER.chat_request(req, TARGET).body or b"")["messages"][0]["content"] == "bad \ud800"


def test_embeddings_request() -> None:
    req = EmbeddingRequest(
        model="x", inputs=("a", "b"), dimensions=256, user="u", extra={"encoding_format": "base64", "foo": 1}
    )
    call = ADAPTER.embeddings_request(req, TARGET)
    assert call.url == "https://api.openai.com/v1/embeddings"
    assert json.loads(call.body or b"") == {
        "model": "gpt-4o-mini",
        "input": ["a", "b"],
        "dimensions": 256,
        "user": "u",
        "foo": 1,
    }
    assert call.dropped == ("encoding_format",)


# --- inbound parsing ------------------------------------------------------------------------------


def test_parse_full_request() -> None:
    req, routing = parse(
        {
            "model": "openai/gpt-4o-mini",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "ok"}]},
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 10,
            "temperature": 1,
            "top_p": 0.5,
            "stop": "END",
            "user": "u",
            "seed": 3,
            "logit_bias": {"50256": -100},
            "provider": {"order": ["groq"]},
            "models": ["a/b", "c/d"],
            "route": "default",
        }
    )
    assert routing == {"provider": {"order": ["groq"]}, "models": ["a/b", "c/d"], "route": "default"}
    assert req == ChatRequest(
        model="openai/gpt-4o-mini",
        messages=(
            Message("system", (TextPart("be brief"),)),
            Message(
                "user",
                (
                    TextPart("what?"),
                    ImagePart(data_b64="/9j/4AAQ", media_type="image/jpeg", detail="high"),
                    ImagePart(url="https://example.com/a.png"),
                ),
            ),
            Message("assistant", (), tool_calls=(ToolCall("c1", "f", "{}"),)),
            Message("tool", (TextPart("ok"),), tool_call_id="c1"),
        ),
        tools=(Tool("f", None, {"type": "object"}),),
        tool_choice=ToolChoice("required"),
        response_format=ResponseFormat("json_schema", "x", {}),
        stream=True,
        include_usage=True,
        max_tokens=10,
        temperature=1.0,
        top_p=0.5,
        stop=("END",),
        user="u",
        extra={"seed": 3, "logit_bias": {"50256": -100}},
    )


def test_routing_fields_are_never_forwarded() -> None:
    req, routing = parse(
        {"messages": [USER_HI], "provider": {"only": ["groq"]}, "models": ["x/y"], "seed": 1}
    )
    body = request_body(req)
    assert "provider" not in body and "models" not in body and body["seed"] == 1
    assert routing == {"provider": {"only": ["groq"]}, "models": ["x/y"]}


def test_null_routing_fields_are_absent() -> None:
    assert parse({"messages": [USER_HI], "provider": None, "route": None})[1] == {}


@pytest.mark.parametrize("model", [None, ""])
def test_missing_or_empty_model_is_none(model: str | None) -> None:
    body: dict[str, Any] = {"messages": [USER_HI]}
    if model is not None:
        body["model"] = model
    assert parse(body)[0].model is None


def test_max_completion_tokens_wins_and_stays_in_extra() -> None:
    req, _ = parse({"messages": [USER_HI], "max_tokens": 10, "max_completion_tokens": 20})
    assert req.max_tokens == 20 and req.extra == {"max_completion_tokens": 20}
    body = request_body(req)
    assert body["max_completion_tokens"] == 20 and "max_tokens" not in body


def test_defaults_and_nulls() -> None:
    req, routing = parse(
        {
            "messages": [USER_HI],
            "stream": None,
            "stop": None,
            "temperature": None,
            "max_completion_tokens": None,
        }
    )
    assert req == ChatRequest(model=None, messages=(Message("user", (TextPart("hi"),)),))
    assert routing == {}


def test_tool_choice_auto_without_tools_is_dropped() -> None:
    req, _ = parse({"messages": [USER_HI], "tool_choice": "auto"})
    assert req.tool_choice is None and "tool_choice" not in request_body(req)


def test_stream_without_include_usage() -> None:
    req, _ = parse({"messages": [USER_HI], "stream": True, "stream_options": {}})
    assert (req.stream, req.include_usage) == (True, False)


def test_empty_assistant_text_with_tool_calls_is_no_content() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    req, _ = parse(with_messages(USER_HI, {"role": "assistant", "content": "", "tool_calls": [call]}))
    assert req.messages[1] == Message("assistant", (), tool_calls=(ToolCall("c", "f", "{}"),))


def test_message_name_round_trips() -> None:
    req, _ = parse({"messages": [{"role": "user", "content": "hi", "name": "bob"}]})
    assert req.messages[0].name == "bob"
    assert request_body(req)["messages"][0]["name"] == "bob"


def with_messages(*messages: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": list(messages)}


def with_fields(**fields: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [USER_HI], **fields}


def user(content: Any) -> dict[str, Any]:
    return with_messages({"role": "user", "content": content})


def image(image_url: Any) -> dict[str, Any]:
    return user([{"type": "image_url", "image_url": image_url}])


def assistant_call(**call: Any) -> dict[str, Any]:
    return with_messages({"role": "assistant", "tool_calls": [call]})


def tool(**fn: Any) -> dict[str, Any]:
    return with_fields(tools=[{"type": "function", "function": fn}])


def tool_choice(
    choice: Any, tools: Any = ({"type": "function", "function": {"name": "f"}},)
) -> dict[str, Any]:
    return with_fields(tools=list(tools), tool_choice=choice)


def stream(options: Any) -> dict[str, Any]:
    return with_fields(stream=True, stream_options=options)


M0, C0, CALL0, FN0 = "messages[0]", "messages[0].content", "messages[0].tool_calls[0]", "tools[0].function"
IMG = "messages[0].content[0].image_url"
INVALID: list[tuple[Any, str | None, str]] = [
    ([], None, "must be a JSON object"),
    ({"model": "x"}, "messages", "'messages' is a required property"),
    (with_fields(messages=[]), "messages", "empty array"),
    (with_fields(messages="hi"), "messages", "Invalid type for 'messages'"),
    (with_messages("hi"), M0, "Invalid type for 'messages[0]': expected an object"),
    (with_messages({"content": "x"}), f"{M0}.role", "'messages[0].role' is a required property"),
    (with_messages({"role": "function", "content": "x", "name": "f"}), f"{M0}.role", "'function' role"),
    (with_messages({"role": "bot", "content": "x"}), f"{M0}.role", "Supported values are"),
    (user(5), C0, "Invalid type for 'messages[0].content'"),
    (with_messages({"role": "user"}), C0, "required property"),
    (user(None), C0, "got null instead"),
    (with_messages({"role": "assistant", "content": None}), C0, "got null instead"),
    (user([]), C0, "empty array"),
    (with_messages(USER_HI, {"role": "user", "content": ["x"]}), "messages[1].content[0]", "Invalid type"),
    (user([{"type": "input_audio", "input_audio": {}}]), f"{C0}[0].type", "unsupported content part type"),
    (user([{"type": "file", "file": {}}]), f"{C0}[0].type", "unsupported content part type"),
    (user([{"text": "x"}]), f"{C0}[0].type", "required"),
    (user([{"type": "text"}]), f"{C0}[0].text", "required"),
    (user([{"type": "text", "text": 1}]), f"{C0}[0].text", "Invalid type"),
    (user([{"type": "image_url"}]), IMG, "required"),
    (image("http://x"), IMG, "Invalid type"),
    (image({"url": 3}), f"{IMG}.url", "Invalid type"),
    (image({"url": "u", "detail": 1}), f"{IMG}.detail", "Invalid type"),
    (
        with_messages(
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}
        ),
        f"{C0}[0]",
        "only allowed in 'user' messages",
    ),
    (with_messages(USER_HI, {"role": "tool", "content": "x"}), "messages[1].tool_call_id", "required"),
    (
        with_messages({"role": "tool", "content": "x", "tool_call_id": 1}),
        f"{M0}.tool_call_id",
        "Invalid type",
    ),
    (with_messages({"role": "assistant", "tool_calls": "x"}), f"{M0}.tool_calls", "Invalid type"),
    (assistant_call(type="function", function={}), f"{CALL0}.id", "required"),
    (assistant_call(id="c", type="custom", function={}), f"{CALL0}.type", "Invalid value"),
    (
        assistant_call(id="c", function={"name": "f", "arguments": {}}),
        f"{CALL0}.function.arguments",
        "Invalid type",
    ),
    (assistant_call(id="c", function={"arguments": "{}"}), f"{CALL0}.function.name", "required"),
    (with_messages({"role": "user", "content": "x", "name": 5}), f"{M0}.name", "Invalid type"),
    (with_fields(tools="x"), "tools", "Invalid type for 'tools'"),
    (with_fields(tools=["x"]), "tools[0]", "Invalid type"),
    (with_fields(tools=[{"type": "retrieval"}]), "tools[0].type", "Invalid value"),
    (with_fields(tools=[{"type": "function"}]), FN0, "required"),
    (tool(), f"{FN0}.name", "required"),
    (tool(name="a b"), f"{FN0}.name", "pattern"),
    (tool(name="a" * 65), f"{FN0}.name", "pattern"),
    (tool(name="f", parameters="x"), f"{FN0}.parameters", "Invalid type"),
    (tool(name="f", description=1), f"{FN0}.description", "Invalid type"),
    (tool_choice("any"), "tool_choice", "Supported values are"),
    (tool_choice(3), "tool_choice", "Invalid type"),
    (tool_choice({"type": "function"}), "tool_choice", "expected"),
    (tool_choice({"type": "function", "function": {"name": "g"}}), "tool_choice", "no tool named 'g'"),
    (tool_choice("required", tools=()), "tool_choice", "only allowed when 'tools'"),
    (with_fields(response_format="json"), "response_format", "Invalid type"),
    (with_fields(response_format={}), "response_format.type", "required"),
    (with_fields(response_format={"type": "xml"}), "response_format.type", "Supported values are"),
    (with_fields(response_format={"type": "json_schema"}), "response_format.json_schema", "required"),
    (
        with_fields(response_format={"type": "json_schema", "json_schema": {}}),
        "response_format.json_schema.name",
        "required",
    ),
    (with_fields(stream="yes"), "stream", "Invalid type for 'stream'"),
    (with_fields(stream_options={"include_usage": True}), "stream_options", "only allowed when 'stream'"),
    (stream(1), "stream_options", "Invalid type"),
    (stream({"include_usage": "yes"}), "stream_options.include_usage", "boolean"),
    (with_fields(max_tokens=True), "max_tokens", "expected an integer, but got a boolean"),
    (with_fields(max_tokens=0), "max_tokens", ">= 1"),
    (with_fields(max_tokens=1.5), "max_tokens", "Invalid type"),
    (with_fields(max_completion_tokens=-1), "max_completion_tokens", ">= 1"),
    (with_fields(temperature=2.5), "temperature", "<= 2"),
    (with_fields(temperature=-0.1), "temperature", ">= 0"),
    (with_fields(temperature="hot"), "temperature", "Invalid type"),
    (with_fields(temperature=True), "temperature", "got a boolean"),
    (with_fields(top_p=1.5), "top_p", "<= 1"),
    (with_fields(stop=[1]), "stop", "Invalid type"),
    (with_fields(stop=["a"] * 5), "stop", "at most 4"),
    (with_fields(model=5), "model", "Invalid type for 'model'"),
    (with_fields(user=5), "user", "Invalid type for 'user'"),
    (with_fields(provider="openai"), "provider", "expected an object"),
    (with_fields(models="a/b"), "models", "expected an array of strings"),
    (with_fields(models=[1]), "models", "expected an array of strings"),
    (with_fields(route=3), "route", "expected a string"),
]


@pytest.mark.parametrize(("body", "param", "message"), INVALID, ids=[f"{p}:{m}" for _, p, m in INVALID])
def test_invalid_requests_name_their_param(body: Any, param: str | None, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(body)
    err = info.value
    assert (err.status, err.param) == (400, param)
    assert message in err.message
    assert INBOUND_OPENAI.error_body(err)["error"] == {
        "message": err.message,
        "type": "invalid_request_error",
        "code": err.code,
        "param": param,
    }


# --- upstream errors ------------------------------------------------------------------------------


def test_golden_invalid_key_error_is_retryable_and_masked() -> None:
    err = ADAPTER.classify_error(401, golden("error_invalid_api_key.json"))
    assert (err.kind, err.status, err.retryable, err.error_type) == (
        "status",
        401,
        True,
        "invalid_request_error",
    )
    assert "sk-" not in err.message and "Xk2A" not in err.message
    assert err.message.startswith("Incorrect API key provided: [redacted]")


def test_golden_context_length_error_is_the_requests_fault() -> None:
    err = ADAPTER.classify_error(400, golden("error_context_length.json"))
    assert not err.retryable
    assert err.message.startswith("This model's maximum context length is 128000 tokens.")


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, True),
        (402, False),
        (403, True),
        (404, True),
        (408, True),
        (409, True),
        (413, False),
        (422, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (529, True),
    ],
)
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert ADAPTER.classify_error(status, b"").retryable is retryable


@pytest.mark.parametrize(
    ("body", "message", "error_type"),
    [
        (b"<html>502 Bad Gateway</html>", "HTTP 503", None),
        (b"", "HTTP 503", None),
        (b'{"error": "model \\"llama9\\" not found"}', 'model "llama9" not found', None),
        (b'{"message": "overloaded", "type": "overloaded_error"}', "overloaded", "overloaded_error"),
        (b'{"error": {"message": "busy", "code": "server_busy"}}', "busy", "server_busy"),
        (b'{"error": {"message": ""}}', "HTTP 503", None),
        (b"[1, 2]", "HTTP 503", None),
    ],
)
def test_error_bodies_of_compatible_servers(body: bytes, message: str, error_type: str | None) -> None:
    err = ADAPTER.classify_error(503, body)
    assert (err.message, err.error_type) == (message, error_type)


def test_error_message_is_truncated_and_masked() -> None:
    secret = "key-" + "a1" * 20
    body = json.dumps({"error": {"message": f"bad {secret} " + "x" * 1000 + " sk-ant-api03-zzzz"}}).encode()
    err = ADAPTER.classify_error(400, body)
    assert len(err.message) <= 300 and secret not in err.message and "sk-" not in err.message


@pytest.mark.parametrize(
    "text",
    [
        "sk-proj-abcDEF123_-x",
        "gsk_abcdefgh1234",
        "Bearer abc.def",
        "AIzaSyA1234567890abcdefghijk",
        "sk-ant-api03-xx",
    ],
)
def test_mask_secrets(text: str) -> None:
    assert mask_secrets(f"a {text} b") == "a [redacted] b"


# --- rendering for clients ------------------------------------------------------------------------

EXTRAS: dict[str, Any] = {
    "cost": 0.000123,
    "x-faregate": {
        "request_id": "0f1e2d3c",
        "routing": {"provider": "groq", "model": "meta-llama/llama-3.1-8b-instruct"},
    },
}


def test_render_chat_is_a_valid_chat_completion() -> None:
    body = INBOUND_OPENAI.render_chat(CHAT_GOLDEN, "auto", Usage(12, 5, 3), EXTRAS)
    completion = ChatCompletion.model_validate(body)
    assert completion.choices[0].message.content == CHAT_GOLDEN.text
    assert completion.usage is not None and completion.usage.total_tokens == 17
    assert body["usage"]["cost"] == 0.000123
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 3}
    assert body["x-faregate"] == EXTRAS["x-faregate"]
    # The id is faregate's, made from the request id (unique per request, finds the trace), never the upstream's.
    assert (body["id"], body["model"], body["created"]) == ("chatcmpl-0f1e2d3c", "auto", CHAT_GOLDEN.created)
    assert body["system_fingerprint"] is None


def test_render_chat_tool_calls_have_null_content() -> None:
    body = INBOUND_OPENAI.render_chat(TOOLS_GOLDEN, "m", Usage(1, 1), {})
    completion = ChatCompletion.model_validate(body)
    message = completion.choices[0].message
    assert message.content is None and message.tool_calls is not None and len(message.tool_calls) == 2
    assert "x-faregate" not in body and "cost" not in body["usage"]


def test_render_chat_fills_id_created_and_maps_error_finish() -> None:
    resp = ChatResponse(id="", model="m", text="", finish_reason="error")
    body = INBOUND_OPENAI.render_chat(resp, "m", Usage(), {"system_fingerprint": "fp_1"})
    assert body["id"].startswith("chatcmpl-") and body["created"] > 0
    assert body["choices"][0]["finish_reason"] == "stop" and body["choices"][0]["message"]["content"] == ""
    assert ChatCompletion.model_validate(body).system_fingerprint == "fp_1"


@pytest.mark.parametrize("resp", [CHAT_GOLDEN, TOOLS_GOLDEN], ids=["text", "tools"])
def test_render_then_parse_round_trips(resp: ChatResponse) -> None:
    assert resp.usage is not None
    body = INBOUND_OPENAI.render_chat(resp, resp.model, resp.usage, {})
    assert ADAPTER.parse_chat_response(json.dumps(body).encode()) == resp


# --- stream decoder -------------------------------------------------------------------------------


def test_decoder_on_the_golden_text_stream() -> None:
    events = decode(golden("stream_text.sse"))
    words = ["Hello", "!", " How", " can", " I", " assist", " you", " today", "?"]
    assert events == [
        Start("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "gpt-4o-mini-2024-07-18"),
        *(TextDelta(w) for w in words),
        Finish("stop", Usage(1219, 10, 1024)),
    ]


def test_decoder_on_the_golden_tool_call_stream() -> None:
    decoder = ADAPTER.stream_decoder()
    per_event = [decoder.feed(ev) for ev in sse_events(golden("stream_tool_calls.sse"))]
    assert per_event[0] == [Start("chatcmpl-BDzLhCPnUQoIy6pYZ0Npb2wXfXtiD", "gpt-4o-2024-08-06")]
    assert per_event[1] == [ToolCallStart(0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_current_weather")]
    assert per_event[2] == [ToolArgsDelta(0, '{"lo')]
    assert per_event[10] == [ToolCallStart(1, "call_ABPQ7NY1LzFUsQKRHivh7MqJ", "get_current_weather")]
    assert per_event[-3] == []  # finish_reason: remembered, not emitted
    assert per_event[-2] == []  # the usage chunk
    assert per_event[-1] == [Finish("tool_calls", Usage(82, 52))]
    assert decoder.close() == []


def test_decoder_close_finishes_a_stream_without_done() -> None:
    raw = golden("stream_text.sse").replace(b"data: [DONE]\n\n", b"")
    decoder = ADAPTER.stream_decoder()
    events = [out for ev in sse_events(raw) for out in decoder.feed(ev)]
    assert all(not isinstance(e, Finish) for e in events)
    assert decoder.close() == [Finish("stop", Usage(1219, 10, 1024))]
    assert decoder.close() == []


def test_decoder_tolerates_null_choices_groq_usage_and_keeps_other_choices_apart() -> None:
    decoder = OpenAIStreamDecoder()
    chunks = [
        {"id": "a", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"id": "a", "choices": [{"index": 1, "delta": {"content": "other"}}]},
        {"id": "a", "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "length"}]},
        {"id": "a", "choices": [], "x_groq": {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}},
        {"id": "a", "choices": None, "unknown": 1},
    ]
    events = [e for c in chunks for e in decoder.feed(SseEvent(json.dumps(c)))]
    assert events + decoder.feed(SseEvent("[DONE]")) == [
        Start("a", "m"),
        TextDelta("other", choice=1),
        Finish("length", Usage(3, 4)),
    ]
    assert decoder.feed(SseEvent('{"choices": [{"delta": {"content": "late"}}]}')) == []


def test_decoder_tool_calls_without_index() -> None:
    decoder = OpenAIStreamDecoder()
    whole = [
        {"id": "c1", "function": {"name": "f", "arguments": '{"a":'}},
        {"function": {"arguments": "1}"}},
        {"id": "c2", "function": {"name": "g", "arguments": "{}"}},
    ]
    events = [
        e
        for call in whole
        for e in decoder.feed(SseEvent(json.dumps({"choices": [{"delta": {"tool_calls": [call]}}]})))
    ]
    assert events[1:] == [
        ToolCallStart(0, "c1", "f"),
        ToolArgsDelta(0, '{"a":'),
        ToolArgsDelta(0, "1}"),
        ToolCallStart(1, "c2", "g"),
        ToolArgsDelta(1, "{}"),
    ]


@pytest.mark.parametrize(
    "data",
    ["not json", "[1]", '{"error": {"message": "overloaded, key sk-abcdef123456", "type": "server_error"}}'],
)
def test_decoder_raises_value_error_on_bad_or_error_chunks(data: str) -> None:
    with pytest.raises(ValueError) as info:
        OpenAIStreamDecoder().feed(SseEvent(data))
    assert "sk-abcdef" not in str(info.value)


# --- stream encoder -------------------------------------------------------------------------------


def chunks_of(raw: bytes) -> list[dict[str, Any]]:
    events = sse_events(raw)
    assert events[-1] == SseEvent("[DONE]")
    return [json.loads(ev.data) for ev in events[:-1]]


def test_encoder_chunks_validate_with_the_sdk_and_share_id() -> None:
    encoder = INBOUND_OPENAI.stream_encoder("auto", include_usage=True)
    events: list[StreamEvent] = [
        Start("up-1", "gpt"),
        TextDelta("Hi"),
        ToolCallStart(0, "call_1", "f"),
        ToolArgsDelta(0, '{"x":1}'),
    ]
    raw = b"".join(map(encoder.encode, events)) + encoder.finish(Finish("tool_calls"), Usage(5, 6, 2), EXTRAS)
    chunks = chunks_of(raw)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    assert {c["id"] for c in chunks} == {"up-1"} and {c["model"] for c in chunks} == {"auto"}
    assert len({c["created"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"] == {"name": "f", "arguments": ""}
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["cost"] == 0.000123 and chunks[-1]["usage"]["total_tokens"] == 11
    assert chunks[-1]["x-faregate"] == EXTRAS["x-faregate"]


def test_encoder_without_include_usage_sends_no_usage_and_no_empty_choices() -> None:
    encoder = INBOUND_OPENAI.stream_encoder("m", include_usage=False)
    raw = encoder.encode(TextDelta("x")) + encoder.finish(Finish("stop"), Usage(1, 1), EXTRAS)
    chunks = chunks_of(raw)
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"  # opened even without a Start
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["x-faregate"] == EXTRAS["x-faregate"]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)


def test_encoder_error_event() -> None:
    encoder = INBOUND_OPENAI.stream_encoder("m", include_usage=True)
    events = sse_events(encoder.error(RateLimited("slow down", retry_after_s=3)))
    assert [json.loads(events[0].data), events[1]] == [
        {
            "error": {
                "message": "slow down",
                "type": "rate_limit_error",
                "code": "rate_limit_exceeded",
                "param": None,
            }
        },
        SseEvent("[DONE]"),
    ]


# --- registry -------------------------------------------------------------------------------------


def test_registry() -> None:
    assert adapter_for("openai") is ADAPTERS["openai"]
    assert isinstance(INBOUND["openai"], OpenAIInbound)
    with pytest.raises(LookupError):
        adapter_for("nope")  # type: ignore[arg-type]


# --- hypothesis -----------------------------------------------------------------------------------

STREAM_GOLDENS = {
    "stream_text.sse": "chat_completion.json",
    "stream_tool_calls.sse": "chat_completion_tool_calls.json",
}


@pytest.mark.parametrize("stream_name", sorted(STREAM_GOLDENS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_chunk_splits_of_golden_streams_give_the_same_events(stream_name: str, data: st.DataObject) -> None:
    raw = golden(stream_name)
    cuts = data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=50).map(sorted))
    events = decode(raw, cuts)
    assert events == decode(raw)
    expected = ADAPTER.parse_chat_response(golden(STREAM_GOLDENS[stream_name]))
    assert collect_stream(events) == replace(expected, created=0)


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
tool_names = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)
text_parts = st.builds(TextPart, text)
images = st.one_of(
    st.builds(
        ImagePart,
        url=st.from_regex(r"https://[a-z]{1,8}\.example/[a-z0-9]{0,8}\.png", fullmatch=True),
        detail=st.sampled_from([None, "auto", "low", "high"]),
    ),
    st.builds(
        ImagePart,
        data_b64=st.from_regex(r"[A-Za-z0-9+/]{4,16}={0,2}", fullmatch=True),
        media_type=st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
        detail=st.sampled_from([None, "low"]),
    ),
)
tool_calls = st.builds(ToolCall, st.text(min_size=1, max_size=8), tool_names, text)


def parts(part: st.SearchStrategy[Part]) -> st.SearchStrategy[tuple[Part, ...]]:
    return st.lists(part, min_size=1, max_size=3).map(tuple)


names = st.one_of(st.none(), st.from_regex(r"[a-z]{1,8}", fullmatch=True))
messages = st.one_of(
    st.builds(Message, st.just("system"), parts(text_parts), name=names),
    st.builds(Message, st.just("user"), parts(st.one_of(text_parts, images)), name=names),
    st.builds(
        Message,
        st.just("assistant"),
        parts(st.builds(TextPart, st.text(min_size=1, max_size=12))),
        tool_calls=st.lists(tool_calls, max_size=2).map(tuple),
        name=names,
    ),
    st.builds(
        Message,
        st.just("assistant"),
        st.just(()),
        tool_calls=st.lists(tool_calls, min_size=1, max_size=2).map(tuple),
    ),
    st.builds(Message, st.just("tool"), parts(text_parts), tool_call_id=st.text(min_size=1, max_size=8)),
)
tools = st.builds(
    Tool,
    tool_names,
    st.one_of(st.none(), text),
    st.sampled_from([{}, {"type": "object", "properties": {"q": {"type": "string"}}}]),
)


@st.composite
def chat_requests(draw: Callable[..., Any]) -> ChatRequest:
    tool_list = tuple(draw(st.lists(tools, max_size=3)))
    choices: list[st.SearchStrategy[ToolChoice | None]] = [st.none()]
    if tool_list:
        choices += [
            st.sampled_from([ToolChoice("auto"), ToolChoice("none"), ToolChoice("required")]),
            st.sampled_from(tool_list).map(lambda t: ToolChoice("tool", t.name)),
        ]
    return ChatRequest(
        model=None,
        messages=tuple(draw(st.lists(messages, min_size=1, max_size=6))),
        tools=tool_list,
        tool_choice=draw(st.one_of(*choices)),
        response_format=draw(st.sampled_from([None, {"type": "json_object"}, {"type": "text"}])),
        stream=draw(st.booleans()),
        max_tokens=draw(st.one_of(st.none(), st.integers(1, 10**6))),
        temperature=draw(st.one_of(st.none(), st.floats(0, 2, allow_nan=False))),
        top_p=draw(st.one_of(st.none(), st.floats(0, 1, allow_nan=False))),
        stop=tuple(draw(st.lists(text, max_size=4))),
        user=draw(st.one_of(st.none(), text)),
        extra=draw(st.sampled_from([{}, {"seed": 42, "logprobs": True}])),
    )


@settings(max_examples=200, deadline=None)
@given(chat_requests())
def test_canonical_request_round_trips_through_the_wire(req: ChatRequest) -> None:
    parsed, routing = parse(request_body(req))
    assert routing == {}
    # streamed or not, more choices and logprobs reach an OpenAI upstream (the stream carries them back)
    assert parsed == replace(req, model=TARGET.upstream_id, include_usage=req.stream, extra=dict(req.extra))


finish_reasons = st.sampled_from(["stop", "length", "tool_calls", "content_filter"])


@st.composite
def event_streams(draw: Callable[..., Any]) -> list[StreamEvent]:
    """Events of up to three choices (OpenAI's `n`), text with or without its tokens' logprobs."""
    events: list[StreamEvent] = [Start(draw(st.text(min_size=1, max_size=10)), "client-model")]
    started = [0, 0, 0]  # tool calls started, per choice
    for _ in range(draw(st.integers(0, 12))):
        n = draw(st.sampled_from([0, 0, 1, 2]))
        kind = draw(st.sampled_from(["text", "call", "args"] if started[n] else ["text", "call"]))
        if kind == "text":
            text = draw(st.text(min_size=1, max_size=10))
            tokens = draw(st.sampled_from([(), (token_logprob(text),)]))
            events.append(TextDelta(text, n, tokens))
        elif kind == "call":
            events.append(ToolCallStart(started[n], draw(st.text(max_size=8)), draw(tool_names), n))
            started[n] += 1
        else:
            index = draw(st.integers(0, started[n] - 1))
            events.append(ToolArgsDelta(index, draw(st.text(min_size=1, max_size=10)), n))
    prompt = draw(st.integers(0, 10**6))
    usage = Usage(prompt, draw(st.integers(0, 10**6)), draw(st.integers(0, prompt)))
    more = tuple((n, draw(finish_reasons)) for n in (1, 2) if draw(st.booleans()))
    events.append(Finish(draw(finish_reasons), usage, more=more))
    return events


def token_logprob(text: str) -> dict[str, Any]:
    return {"token": text, "bytes": list(text.encode()), "logprob": -0.25, "top_logprobs": []}


@settings(max_examples=150, deadline=None)
@given(event_streams(), st.booleans())
def test_encoder_output_decodes_to_the_same_events(events: list[StreamEvent], include_usage: bool) -> None:
    encoder = INBOUND_OPENAI.stream_encoder("client-model", include_usage)
    finish = events[-1]
    assert isinstance(finish, Finish) and finish.usage is not None
    raw = b"".join(encoder.encode(ev) for ev in events[:-1]) + encoder.finish(finish, finish.usage, EXTRAS)
    for chunk in chunks_of(raw):
        ChatCompletionChunk.model_validate(chunk)
    usage = finish.usage if include_usage else None
    expected = [*events[:-1], Finish(finish.finish_reason, usage, more=finish.more)]
    assert decode(raw) == expected


@pytest.mark.parametrize("source", ["openai-responses", "anthropic"])
def test_another_formats_serial_tool_calls_reach_chat_completions(source: Any) -> None:
    """`parallel_tool_calls: false` of a Responses client (or an Anthropic client's
    `disable_parallel_tool_use`) is sent on, only with tools (OpenAI refuses it on a request without)."""
    from faregate.providers.openai.request import render_request

    serial = MappingProxyType({"parallel_tool_calls": False})
    req = ChatRequest(
        "m", (Message("user", (TextPart("hi"),)),), tools=(Tool("f"),), source_api=source, extra=serial
    )
    body, dropped = render_request(req, "gpt-4o-mini")
    assert body["parallel_tool_calls"] is False and "parallel_tool_calls" not in dropped
    body, dropped = render_request(replace(req, tools=()), "gpt-4o-mini")
    assert "parallel_tool_calls" not in body and not dropped
