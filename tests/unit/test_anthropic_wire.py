"""The Anthropic wire format: golden payloads from Anthropic's docs, request translation, validation, errors,
the client-facing renderings checked with the `anthropic` SDK's own models, and round-trip properties."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import Message as SdkMessage
from anthropic.types import RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    Thought,
    Tool,
    ToolArgsDelta,
    ToolCall,
    ToolCallStart,
    ToolChoice,
    Usage,
    collect_stream,
)
from faregate.errors import (
    AllChannelsFailed,
    FaregateError,
    InvalidRequest,
    RateLimited,
    UpstreamError,
)
from faregate.providers.anthropic import (
    AnthropicAdapter,
    AnthropicInbound,
    AnthropicStreamDecoder,
    StreamError,
)
from faregate.providers.anthropic.inbound import CANONICAL_FIELDS
from faregate.providers.anthropic.request import JSON_INSTRUCTION
from faregate.providers.base import Adapter, Inbound, Target
from faregate.providers.fields import ROUTING_FIELDS
from faregate.providers.sse import SseDecoder, SseEvent

DATA = Path(__file__).parent.parent / "data" / "anthropic"
ADAPTER = AnthropicAdapter()
INBOUND = AnthropicInbound()
TARGET = Target(base_url="https://api.anthropic.com", upstream_id="claude-x", api_key="sk-ant-test-key")
STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)

# The seams are Protocols: mypy checks these assignments structurally.
_adapter: Adapter = ADAPTER
_inbound: Inbound = INBOUND


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def sse_events(data: bytes) -> list[SseEvent]:
    decoder = SseDecoder()
    return decoder.feed(data) + decoder.close()


def decode(events: list[SseEvent]) -> list[StreamEvent]:
    decoder = ADAPTER.stream_decoder()
    out = [e for ev in events for e in decoder.feed(ev)]
    return out + decoder.close()


def body_of(req: ChatRequest, target: Target = TARGET) -> dict[str, Any]:
    call = ADAPTER.chat_request(req, target)
    assert call.body is not None
    body: dict[str, Any] = json.loads(call.body)
    return body


def user(text: str) -> Message:
    return Message(role="user", content=(TextPart(text),))


def chat(*messages: Message, **kw: Any) -> ChatRequest:
    return ChatRequest(model=None, messages=messages, **kw)


# --- golden upstream payloads ---------------------------------------------------------------------------


def test_parse_text_message() -> None:
    resp = ADAPTER.parse_chat_response(raw("message_text.json"))
    assert resp == ChatResponse(
        id="msg_013Zva2CMHLNnXjNJJKqJ2EF",
        model="claude-sonnet-4-5-20250929",
        text="Hi! My name is Claude.",
        finish_reason="stop",
        usage=Usage(prompt_tokens=2095, completion_tokens=503),
    )


def test_parse_tool_use_message_ignores_thinking_and_counts_cache_in_prompt() -> None:
    resp = ADAPTER.parse_chat_response(raw("message_tool_use.json"))
    assert resp.text == "Okay, let's check the weather for San Francisco, CA:"
    assert resp.tool_calls == (
        ToolCall(
            "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "get_weather",
            '{"location":"San Francisco, CA","unit":"fahrenheit"}',
        ),
    )
    assert resp.finish_reason == "tool_calls"
    # Anthropic's input_tokens (472) excludes the cache; canonical prompt_tokens includes it.
    assert resp.usage == Usage(2572, 89, cache_read_tokens=2000, cache_write_tokens=100)


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
        ("something_new", "stop"),
    ],
)
def test_stop_reason_table(stop: str | None, finish: str) -> None:
    body = json.loads(raw("message_text.json"))
    body["stop_reason"] = stop
    assert ADAPTER.parse_chat_response(json.dumps(body).encode()).finish_reason == finish


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id": "msg_1", "model": "m", "usage": {"input_tokens": 1, "output_tokens": 1}}',
        b'{"id": "msg_1", "model": "m", "content": [{"type": "text"}], "usage": {}}',
        b'{"id": "msg_1", "model": "m", "usage": {},'
        b' "content": [{"type": "tool_use", "id": "t", "name": "n", "input": []}]}',
        b'{"id": "msg_1", "model": "m", "content": []}',
        b'{"model": "m", "content": [], "usage": {}}',
        b'{"id": "msg_1", "model": "m", "content": [], "usage": {"input_tokens": "3"}}',
    ],
)
def test_malformed_response_is_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        ADAPTER.parse_chat_response(body)


def test_text_stream_event_by_event() -> None:
    assert decode(sse_events(raw("stream_text.sse"))) == [
        Start("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "claude-sonnet-4-5-20250929", Usage(25, 1)),
        TextDelta("Hello"),
        TextDelta("!"),
        Finish("stop", Usage(25, 15)),
    ]


def test_tool_use_stream_event_by_event() -> None:
    events = decode(sse_events(raw("stream_tool_use.sse")))
    signature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    assert [e for e in events if isinstance(e, ReasoningDelta)] == [
        ReasoningDelta("The user wants the weather; I should call get_weather.", origin="anthropic"),
        ReasoningDelta("", signature, origin="anthropic"),
    ]
    assert [e for e in events if not isinstance(e, ReasoningDelta)] == [
        Start("msg_01Aq9w938a90dw8q", "claude-sonnet-4-5-20250929", Usage(2572, 2, 2000, 100)),
        TextDelta("Okay"),
        TextDelta(","),
        TextDelta(" let's check the weather for San Francisco, CA:"),
        ToolCallStart(0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"),
        ToolArgsDelta(0, '{"location":'),
        ToolArgsDelta(0, '"San Francisco, CA"'),
        ToolArgsDelta(0, ',"unit":"fah'),
        ToolArgsDelta(0, 'renheit"}'),
        Finish("tool_calls", Usage(2572, 89, cache_read_tokens=2000, cache_write_tokens=100)),
    ]


def test_tool_use_stream_collects_to_the_non_streaming_message() -> None:
    streamed = collect_stream(decode(sse_events(raw("stream_tool_use.sse"))))
    assert streamed == ADAPTER.parse_chat_response(raw("message_tool_use.json"))


def test_error_event_raises_stream_error_after_the_text_so_far() -> None:
    decoder = ADAPTER.stream_decoder()
    seen: list[StreamEvent] = []
    with pytest.raises(StreamError) as info:
        for ev in sse_events(raw("stream_error.sse")):
            seen.extend(decoder.feed(ev))
    assert seen == [
        Start("msg_01XFDUDYJgAACzvnptvVoYEL", "claude-sonnet-4-5-20250929", Usage(12, 1)),
        TextDelta("Once upon"),
    ]
    assert info.value.error == UpstreamError(
        kind="status", message="Overloaded", status=529, retryable=True, error_type="overloaded_error"
    )


def test_stream_without_message_stop_is_a_protocol_error() -> None:
    events = sse_events(raw("stream_text.sse"))[:-1]
    decoder = ADAPTER.stream_decoder()
    for ev in events:
        decoder.feed(ev)
    with pytest.raises(StreamError) as info:
        decoder.close()
    assert info.value.error.kind == "protocol"
    assert info.value.error.retryable
    assert "message_stop" in info.value.error.message


@pytest.mark.parametrize(
    "data",
    [
        "{not json",
        "[1]",
        '{"type": "content_block_start", "index": 0}',
        '{"type": "message_start", "message": {"model": "m"}}',
    ],
)
def test_malformed_stream_event_is_a_protocol_error(data: str) -> None:
    with pytest.raises(StreamError) as info:
        ADAPTER.stream_decoder().feed(SseEvent(data, "x"))
    assert info.value.error.kind == "protocol"


def test_message_delta_may_carry_final_input_and_cache_counts() -> None:
    decoder = AnthropicStreamDecoder()
    start = {"id": "msg_1", "model": "m", "usage": {"input_tokens": 10, "output_tokens": 1}}
    decoder.feed(SseEvent(json.dumps({"type": "message_start", "message": start})))
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens"},
        "usage": {"output_tokens": 7, "input_tokens": 12, "cache_read_input_tokens": 5},
    }
    decoder.feed(SseEvent(json.dumps(delta)))
    assert decoder.feed(SseEvent('{"type": "message_stop"}')) == [Finish("length", Usage(17, 7, 5, 0))]


def test_server_tool_input_deltas_are_not_client_tool_calls() -> None:
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 1}}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]
    assert decode([SseEvent(json.dumps(e)) for e in events]) == [
        Start("msg_1", "m", Usage(1, 0)),
        Finish("stop", Usage(1, 3)),
    ]


# --- canonical -> Messages API request --------------------------------------------------------------------


def test_call_url_headers_and_model() -> None:
    call = ADAPTER.chat_request(chat(user("hi")), TARGET)
    assert (call.method, call.url) == ("POST", "https://api.anthropic.com/v1/messages")
    assert call.headers == {
        "x-api-key": "sk-ant-test-key",
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }
    assert "sk-ant-test-key" not in repr(call)
    assert body_of(chat(user("hi")))["model"] == "claude-x"


@pytest.mark.parametrize("base", ["https://api.anthropic.com/", "https://api.anthropic.com/v1"])
def test_url_tolerates_trailing_slash_and_v1(base: str) -> None:
    target = Target(base_url=base, upstream_id="m")
    assert ADAPTER.chat_request(chat(user("hi")), target).url == "https://api.anthropic.com/v1/messages"


def test_system_messages_join_into_top_level_system() -> None:
    req = chat(
        Message("system", (TextPart("You are terse."),)),
        user("hi"),
        Message("system", (TextPart("Answer in French."),)),
    )
    body = body_of(req)
    assert body["system"] == "You are terse.\n\nAnswer in French."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_consecutive_same_role_turns_merge_and_tool_results_share_one_user_turn() -> None:
    call_a = ToolCall("toolu_a", "get_weather", '{"city": "Paris"}')
    call_b = ToolCall("toolu_b", "get_time", "{}")
    req = chat(
        user("one"),
        user("two"),
        Message("assistant", (TextPart("checking"),), tool_calls=(call_a, call_b)),
        Message("tool", (TextPart("18C"),), tool_call_id="toolu_a"),
        Message("tool", (TextPart("boom"),), tool_call_id="toolu_b", is_error=True),
        user("thanks"),
    )
    assert body_of(req)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "checking"},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": "boom", "is_error": True},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]


def test_invalid_tool_arguments_become_empty_input_and_are_noted() -> None:
    req = chat(user("go"), Message("assistant", tool_calls=(ToolCall("toolu_1", "f", '{"a": '),)))
    call = ADAPTER.chat_request(req, TARGET)
    assert call.body is not None
    assert json.loads(call.body)["messages"][1]["content"][0]["input"] == {}
    assert call.dropped == ("tool_calls[toolu_1].arguments (not a JSON object)",)


def test_images_base64_url_and_data_url() -> None:
    req = chat(
        Message(
            "user",
            (
                ImagePart(data_b64="iVBORw0KGgo=", media_type="image/png"),
                ImagePart(url="https://example.com/cat.jpg", detail="high"),
                ImagePart(url="data:image/webp;base64,UklGRg=="),
            ),
        )
    )
    call = ADAPTER.chat_request(req, TARGET)
    assert call.body is not None
    assert [b["source"] for b in json.loads(call.body)["messages"][0]["content"]] == [
        {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        {"type": "url", "url": "https://example.com/cat.jpg"},
        {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="},
    ]
    assert call.dropped == ("image detail",)


def test_tool_result_with_an_image_is_a_block_list() -> None:
    req = chat(
        user("look"),
        Message("assistant", tool_calls=(ToolCall("toolu_1", "shot", "{}"),)),
        Message("tool", (TextPart("here"), ImagePart(url="https://x/y.png")), tool_call_id="toolu_1"),
    )
    assert body_of(req)["messages"][2]["content"][0]["content"] == [
        {"type": "text", "text": "here"},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
    ]


def test_tools_and_default_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    req = chat(user("hi"), tools=(Tool("weather", "Get weather", schema), Tool("now")))
    assert body_of(req)["tools"] == [
        {"name": "weather", "description": "Get weather", "input_schema": schema},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice("auto"), {"type": "auto"}),
        (ToolChoice("required"), {"type": "any"}),
        (ToolChoice("tool", "now"), {"type": "tool", "name": "now"}),
        (ToolChoice("none"), {"type": "none"}),
    ],
)
def test_tool_choice_table(choice: ToolChoice, wire: dict[str, Any]) -> None:
    assert body_of(chat(user("hi"), tools=(Tool("now"),), tool_choice=choice))["tool_choice"] == wire


def test_tool_choice_without_tools_is_dropped_and_noted() -> None:
    call = ADAPTER.chat_request(chat(user("hi"), tool_choice=ToolChoice("none")), TARGET)
    assert call.body is not None and "tool_choice" not in json.loads(call.body)
    assert call.dropped == ("tool_choice",)


def test_parallel_tool_calls_false_disables_parallel_tool_use() -> None:
    req = chat(user("hi"), tools=(Tool("now"),), extra={"parallel_tool_calls": False})
    call = ADAPTER.chat_request(req, TARGET)
    assert call.body is not None
    assert json.loads(call.body)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert call.dropped == ()


@pytest.mark.parametrize(
    ("requested", "offering", "expected"),
    [(100, 8192, 100), (None, 8192, 8192), (None, None, 4096)],
)
def test_max_tokens_is_always_set(requested: int | None, offering: int | None, expected: int) -> None:
    target = Target(base_url="https://api.anthropic.com", upstream_id="m", max_output_tokens=offering)
    assert body_of(chat(user("hi"), max_tokens=requested), target)["max_tokens"] == expected


@pytest.mark.parametrize(("given_t", "sent"), [(1.7, 1.0), (0.4, 0.4), (-0.5, 0.0), (0.0, 0.0)])
def test_temperature_is_clamped_to_anthropic_range(given_t: float, sent: float) -> None:
    assert body_of(chat(user("hi"), temperature=given_t))["temperature"] == sent


def test_sampling_params_table() -> None:
    body = body_of(chat(user("hi"), top_p=0.9, stop=("END", "STOP"), user="u-42", stream=True))
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END", "STOP"]
    assert body["metadata"] == {"user_id": "u-42"}
    assert body["stream"] is True
    assert not {"temperature", "top_k", "tools", "tool_choice", "system"} & body.keys()


def test_json_object_mode_becomes_a_system_instruction() -> None:
    req = chat(
        Message("system", (TextPart("Be brief."),)), user("hi"), response_format={"type": "json_object"}
    )
    assert body_of(req)["system"] == f"Be brief.\n\n{JSON_INSTRUCTION}"


def test_json_schema_mode_is_anthropics_structured_output() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    req = chat(
        user("hi"), response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    )
    body = body_of(req)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "system" not in body


def test_extra_is_forwarded_only_when_the_client_spoke_anthropic() -> None:
    extra = {"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}, "metadata": {"x": 1}}
    own = ADAPTER.chat_request(chat(user("hi"), user="u", source_api="anthropic", extra=extra), TARGET)
    assert own.body is not None and own.dropped == ()
    body = json.loads(own.body)
    assert body["top_k"] == 5 and body["thinking"] == extra["thinking"]
    assert body["metadata"] == {"x": 1, "user_id": "u"}
    other = ADAPTER.chat_request(chat(user("hi"), extra={"seed": 1, "logprobs": True}), TARGET)
    assert other.body is not None and other.dropped == ("logprobs", "seed")
    assert not {"seed", "logprobs"} & json.loads(other.body).keys()


def test_no_embeddings_api() -> None:
    with pytest.raises(InvalidRequest, match="no embeddings"):
        ADAPTER.embeddings_request(EmbeddingRequest(None, ("x",)), TARGET)
    with pytest.raises(InvalidRequest):
        ADAPTER.parse_embeddings_response(b"{}")


# --- upstream errors --------------------------------------------------------------------------------------


def envelope(etype: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": etype, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "etype", "retryable"),
    [
        (400, "invalid_request_error", False),
        (401, "authentication_error", True),
        (402, "billing_error", False),
        (403, "permission_error", True),
        (404, "not_found_error", True),
        (408, "timeout_error", True),
        (409, "conflict_error", True),
        (413, "request_too_large", False),
        (422, "invalid_request_error", False),
        (429, "rate_limit_error", True),
        (500, "api_error", True),
        (503, "api_error", True),
        (504, "timeout_error", True),
        (529, "overloaded_error", True),
    ],
)
def test_error_classification_table(status: int, etype: str, retryable: bool) -> None:
    err = ADAPTER.classify_error(status, envelope(etype, "Something happened"))
    assert err == UpstreamError(
        kind="status", message="Something happened", status=status, retryable=retryable, error_type=etype
    )


def test_golden_error_bodies() -> None:
    overloaded = ADAPTER.classify_error(529, raw("error_overloaded.json"))
    assert (overloaded.error_type, overloaded.message, overloaded.retryable) == (
        "overloaded_error",
        "Overloaded",
        True,
    )
    invalid = ADAPTER.classify_error(400, raw("error_invalid_request.json"))
    assert invalid.error_type == "invalid_request_error" and not invalid.retryable
    assert invalid.message.startswith("messages.1.content.0.tool_result") and len(invalid.message) <= 300


def test_error_message_masks_keys_and_never_keeps_a_raw_body() -> None:
    leaked = ADAPTER.classify_error(
        401, envelope("authentication_error", "invalid x-api-key sk-ant-api03-abcDEF123_-xyz")
    )
    assert "abcDEF" not in leaked.message and "[redacted]" in leaked.message
    html = ADAPTER.classify_error(502, b"<html>Bad gateway sk-ant-api03-secretsecret</html>")
    assert html == UpstreamError(kind="status", message="HTTP 502", status=502, retryable=True)
    long = ADAPTER.classify_error(400, envelope("invalid_request_error", "x" * 1000))
    assert len(long.message) == 300


# --- /v1/messages inbound: validation -----------------------------------------------------------------------


def base_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(changes)
    return body


def turns(*content: Any, role: str = "user") -> dict[str, Any]:
    return base_body(messages=[{"role": role, "content": list(content)}])


def image(source: Any) -> dict[str, Any]:
    return {"type": "image", "source": source}


TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
BAD_REQUESTS: list[tuple[object, str]] = [
    ([], "body"),
    ({"model": "m"}, "messages"),
    (base_body(messages=[]), "messages"),
    (base_body(messages="hi"), "messages"),
    (base_body(messages=["hi"]), "messages.0"),
    (base_body(messages=[{"role": "system", "content": "x"}]), "messages.0.role"),
    (base_body(messages=[{"role": "user"}]), "messages.0.content"),
    (base_body(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
    (turns("text"), "messages.0.content.0"),
    (turns({"type": "document", "source": {}}), "messages.0.content.0.type"),
    (turns({"type": ["text"]}), "messages.0.content.0.type"),
    (turns({"type": "text"}), "messages.0.content.0.text"),
    (turns({"type": "text", "text": 5}), "messages.0.content.0.text"),
    (turns(image("x")), "messages.0.content.0.source"),
    (
        turns(image({"type": "base64", "media_type": "image/bmp", "data": "x"})),
        "messages.0.content.0.source.media_type",
    ),
    (turns(image({"type": "base64", "media_type": "image/png"})), "messages.0.content.0.source.data"),
    (turns(image({"type": "url"})), "messages.0.content.0.source.url"),
    (turns(image({"type": "file", "file_id": "f"})), "messages.0.content.0.source.type"),
    (turns(TOOL_USE), "messages.0.content.0.type"),
    (turns({"type": "tool_result", "tool_use_id": "t"}, role="assistant"), "messages.0.content.0.type"),
    (turns({**TOOL_USE, "input": "{}"}, role="assistant"), "messages.0.content.0.input"),
    (turns({**TOOL_USE, "id": None}, role="assistant"), "messages.0.content.0.id"),
    (turns({**TOOL_USE, "name": 3}, role="assistant"), "messages.0.content.0.name"),
    (turns({"type": "tool_result"}), "messages.0.content.0.tool_use_id"),
    (turns({"type": "tool_result", "tool_use_id": "t", "content": 5}), "messages.0.content.0.content"),
    (
        turns({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "tool_use"}]}),
        "messages.0.content.0.content.0.type",
    ),
    (turns({"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}), "messages.0.content.0.is_error"),
    (base_body(system=5), "system"),
    (base_body(system=[{"type": "image", "source": {}}]), "system.0.type"),
    (base_body(system=[{"type": "text"}]), "system.0.text"),
    (base_body(tools={}), "tools"),
    (base_body(tools=["f"]), "tools.0"),
    (base_body(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools.0.type"),
    (base_body(tools=[{"input_schema": {}}]), "tools.0.name"),
    (base_body(tools=[{"name": "f"}]), "tools.0.input_schema"),
    (base_body(tools=[{"name": "f", "input_schema": {}, "description": 1}]), "tools.0.description"),
    (base_body(tool_choice="auto"), "tool_choice"),
    (base_body(tool_choice={"type": "required"}), "tool_choice.type"),
    (base_body(tool_choice={"type": ["auto"]}), "tool_choice.type"),
    (base_body(tool_choice={"type": "tool"}), "tool_choice.name"),
    (
        base_body(tool_choice={"type": "any", "disable_parallel_tool_use": 1}),
        "tool_choice.disable_parallel_tool_use",
    ),
    (base_body(max_tokens=0), "max_tokens"),
    (base_body(max_tokens="100"), "max_tokens"),
    (base_body(max_tokens=True), "max_tokens"),
    (base_body(max_tokens=1.5), "max_tokens"),
    (base_body(stop_sequences="END"), "stop_sequences"),
    (base_body(stop_sequences=[1]), "stop_sequences"),
    (base_body(temperature=1.5), "temperature"),
    (base_body(temperature=-0.1), "temperature"),
    (base_body(temperature="hot"), "temperature"),
    (base_body(top_p=2), "top_p"),
    (base_body(top_k=-1), "top_k"),
    (base_body(top_k=1.5), "top_k"),
    (base_body(metadata="u"), "metadata"),
    (base_body(metadata={"user_id": 5}), "metadata.user_id"),
    (base_body(stream="yes"), "stream"),
    (base_body(model=5), "model"),
    (base_body(provider="openai"), "provider"),
    (base_body(models="a,b"), "models"),
    (base_body(route=5), "route"),
]


@pytest.mark.parametrize(("body", "param"), BAD_REQUESTS, ids=[p for _, p in BAD_REQUESTS])
def test_validation_errors_name_their_param(body: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        INBOUND.parse_chat(body)
    assert info.value.param == param
    assert info.value.status == 400


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(sorted(CANONICAL_FIELDS | ROUTING_FIELDS.keys() | {"thinking"}))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(FIELDS, JSON_VALUES, max_size=6), st.lists(JSON_VALUES, max_size=3))
def test_any_json_is_accepted_or_rejected_with_invalid_request(body: dict[str, Any], msgs: list[Any]) -> None:
    body.setdefault(
        "messages", [{"role": "user", "content": msgs}] if msgs else [{"role": "user", "content": "x"}]
    )
    try:
        INBOUND.parse_chat(body)
    except InvalidRequest as e:
        assert e.param


# --- /v1/messages inbound: mapping --------------------------------------------------------------------------


def test_parse_maps_a_full_request() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "t", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "also this"},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "-3C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": [{"type": "text", "text": "failed"}],
                        "is_error": True,
                    },
                    image({"type": "url", "url": "https://x/y.png"}),
                ],
            },
        ],
        "tools": [{"name": "w", "description": "Weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "top_p": 0.8,
        "top_k": 40,
        "metadata": {"user_id": "u-1"},
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "service_tier": None,
        "provider": {"order": ["anthropic"]},
        "models": ["anthropic/claude-3-5-haiku"],
        "route": "cheap",
    }
    req, routing = INBOUND.parse_chat(body)
    assert routing == {
        "provider": {"order": ["anthropic"]},
        "models": ["anthropic/claude-3-5-haiku"],
        "route": "cheap",
    }
    assert req.messages[2].thoughts == (Thought("hmm", "sig", "anthropic"),)  # passed back upstream
    assert tuple(replace(m, thoughts=()) for m in req.messages) == (
        Message("system", (TextPart("Be terse."),)),
        user("weather?"),
        Message(
            "assistant",
            (TextPart("Checking."),),
            tool_calls=(ToolCall("toolu_1", "w", '{"city":"Oslo"}'), ToolCall("toolu_2", "t", "{}")),
        ),
        Message("tool", (TextPart("-3C"),), tool_call_id="toolu_1"),
        Message("tool", (TextPart("failed"),), tool_call_id="toolu_2", is_error=True),
        Message("user", (TextPart("also this"), ImagePart(url="https://x/y.png"))),
    )
    assert req.tools == (Tool("w", "Weather", {"type": "object"}),)
    assert req.tool_choice == ToolChoice("required")
    assert (req.model, req.max_tokens, req.temperature, req.top_p, req.stop) == (
        "claude-sonnet-4-5",
        512,
        0.5,
        0.8,
        ("END",),
    )
    assert (req.user, req.stream, req.include_usage, req.source_api) == ("u-1", True, True, "anthropic")
    assert dict(req.extra) == {"parallel_tool_calls": False}
    assert (req.top_k, req.reasoning) == (40, Reasoning(budget_tokens=2048))


def test_model_is_optional_and_means_auto() -> None:
    req, routing = INBOUND.parse_chat({"messages": [{"role": "user", "content": "hi"}]})
    assert req.model is None and req.max_tokens is None and routing == {}
    assert req.messages == (user("hi"),)


def test_anthropic_request_round_trips_to_an_anthropic_upstream() -> None:
    body = base_body(
        system="S",
        top_k=3,
        thinking={"type": "enabled", "budget_tokens": 1024},
        metadata={"user_id": "u"},
        tools=[{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
        tool_choice={"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        temperature=0.3,
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    )
    req, _ = INBOUND.parse_chat(body)
    sent = body_of(req)
    assert sent == {**body, "model": "claude-x"}


# --- /v1/messages inbound: rendering ------------------------------------------------------------------------

EXTRAS = {"cost": 0.00123, "x-faregate": {"routing": {"provider": "groq"}, "savings": {"amount_saved": 0.01}}}


def test_render_chat_is_a_valid_sdk_message() -> None:
    resp = ChatResponse(
        "chatcmpl-42",
        "llama-3.1-8b-instant",
        "Let me look.",
        (ToolCall("call_1", "w", '{"city": "Oslo"}'),),
        "tool_calls",
    )
    usage = Usage(1000, 20, cache_read_tokens=600, cache_write_tokens=100)
    wire = INBOUND.render_chat(resp, "meta-llama/llama-3.1-8b-instruct", usage, dict(EXTRAS))
    message = SdkMessage.model_validate(wire)
    assert message.id == "msg_chatcmpl-42"
    assert message.model == "meta-llama/llama-3.1-8b-instruct"
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert wire["content"][1] == {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Oslo"}}
    assert (message.stop_reason, message.stop_sequence) == ("tool_use", None)
    assert wire["usage"] == {
        "input_tokens": 300,
        "output_tokens": 20,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 600,
        "cost": 0.00123,
    }
    assert wire["x-faregate"] == EXTRAS["x-faregate"]


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_render_stop_reason_table(finish: FinishReason, stop: str) -> None:
    wire = INBOUND.render_chat(ChatResponse("msg_1", "m", "hi", finish_reason=finish), "m", Usage(1, 1), {})
    assert wire["stop_reason"] == stop and wire["id"] == "msg_1"
    assert "x-faregate" not in wire and "cost" not in wire["usage"]


def test_render_omits_empty_text_only_when_there_are_tool_calls() -> None:
    calls = (ToolCall("c", "f", "not json"),)
    with_calls = INBOUND.render_chat(ChatResponse("1", "m", "", calls, "tool_calls"), "m", Usage(), {})
    assert with_calls["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": {}}]
    empty = INBOUND.render_chat(ChatResponse("1", "m", ""), "m", Usage(), {})
    assert empty["content"] == [{"type": "text", "text": ""}]
    SdkMessage.model_validate(with_calls)
    SdkMessage.model_validate(empty)


def test_error_body_is_anthropic_envelope() -> None:
    for err in (InvalidRequest("bad", param="messages"), RateLimited("slow down", retry_after_s=3)):
        body = INBOUND.error_body(err)
        assert ErrorResponse.model_validate(body).error.message == err.message
    assert INBOUND.error_body(AllChannelsFailed([]))["error"]["type"] == "overloaded_error"


def encoded_events(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    return [(ev.event, json.loads(ev.data)) for ev in sse_events(data)]


def check_sdk_events(data: bytes) -> None:
    """Every event parses with the SDK's models, and its `event:` name equals its data's `type`."""
    for name, payload in encoded_events(data):
        assert name == payload["type"]
        if name == "error":
            ErrorResponse.model_validate(payload)
        elif name != "ping":
            STREAM_EVENT.validate_python(payload)


def test_encoder_writes_anthropics_event_sequence() -> None:
    encoder = INBOUND.stream_encoder("openai/gpt-4o-mini", include_usage=False)
    upstream: list[StreamEvent] = [
        Start("chatcmpl-1", "gpt-4o-mini"),
        TextDelta("Hi"),
        TextDelta(" there"),
        ToolCallStart(0, "call_1", "w"),
        ToolArgsDelta(0, '{"city":'),
        ToolArgsDelta(0, '"Oslo"}'),
    ]
    out = b"".join(encoder.encode(ev) for ev in upstream)
    out += encoder.finish(Finish("tool_calls"), Usage(50, 9, cache_read_tokens=10), dict(EXTRAS))
    check_sdk_events(out)
    events = encoded_events(out)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert (start["id"], start["model"], start["content"], start["stop_reason"]) == (
        "msg_chatcmpl-1",
        "openai/gpt-4o-mini",
        [],
        None,
    )
    assert start["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert events[6][1] == {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "call_1", "name": "w", "input": {}},
    }
    assert events[7][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"city":'}
    assert events[10][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 40,
            "output_tokens": 9,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 10,
            "cost": 0.00123,
        },
        "x-faregate": EXTRAS["x-faregate"],
    }


def test_encoder_copes_with_decimal_cost_frozen_extras_and_lone_surrogates() -> None:
    encoder = INBOUND.stream_encoder("m", include_usage=True)
    out = encoder.encode(TextDelta("bad \ud800 text"))
    out += encoder.finish(
        Finish("stop"), Usage(1, 1), {"cost": Decimal("0.000012"), "x-faregate": MappingProxyType({})}
    )
    check_sdk_events(out)
    assert encoded_events(out)[3][1]["delta"]["text"] == "bad \ud800 text"
    assert encoded_events(out)[5][1]["usage"]["cost"] == 0.000012


def test_request_body_serializes_frozen_schemas_and_extra() -> None:
    schema = MappingProxyType({"type": "object", "properties": MappingProxyType({"a": MappingProxyType({})})})
    extra = MappingProxyType({"thinking": MappingProxyType({"type": "enabled", "budget_tokens": 1024})})
    body = body_of(chat(user("hi"), tools=(Tool("f", None, schema),), source_api="anthropic", extra=extra))
    assert body["tools"][0]["input_schema"] == {"type": "object", "properties": {"a": {}}}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_encoder_error_event_and_start_without_upstream_start() -> None:
    encoder = INBOUND.stream_encoder("m", include_usage=True)
    out = encoder.encode(TextDelta("partial")) + encoder.error(
        AllChannelsFailed([("c", UpstreamError("timeout", "t"))])
    )
    check_sdk_events(out)
    events = encoded_events(out)
    assert events[0][1]["message"]["id"].startswith("msg_")
    assert events[-1] == (
        "error",
        {"type": "error", "error": {"type": "timeout_error", "message": "every channel timed out (c: t)"}},
    )


# --- the anthropic SDK itself, against faregate's renderings (MockTransport: no network) ------------------


def sdk_client(handler: Callable[[httpx2.Request], httpx2.Response]) -> anthropic.Anthropic:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return anthropic.Anthropic(
        api_key="sk-ant-x", base_url="http://faregate.test", http_client=http, max_retries=0
    )


SDK_TOOLS: Any = [
    {"name": "w", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}
]


def test_sdk_request_parses_and_sdk_reads_the_rendered_message() -> None:
    seen: list[ChatRequest] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        req, _ = INBOUND.parse_chat(json.loads(request.content))
        seen.append(req)
        resp = ChatResponse("x1", "up", "Sure.", (ToolCall("call_9", "w", '{"city":"Rome"}'),), "tool_calls")
        return httpx2.Response(200, json=INBOUND.render_chat(resp, "auto", Usage(10, 5), dict(EXTRAS)))

    message = sdk_client(handler).messages.create(
        model="auto",
        max_tokens=64,
        system="Be brief.",
        tools=SDK_TOOLS,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
    )
    assert seen[0].messages[0] == Message("system", (TextPart("Be brief."),))
    assert seen[0].tools[0].name == "w"
    assert message.stop_reason == "tool_use"
    assert message.content[1].type == "tool_use" and message.content[1].input == {"city": "Rome"}
    assert message.usage.input_tokens == 10 and message.usage.output_tokens == 5


def stream_bytes(events: list[StreamEvent], usage: Usage) -> bytes:
    encoder = INBOUND.stream_encoder("auto", include_usage=True)
    finish = next(e for e in events if isinstance(e, Finish))
    body = b"".join(encoder.encode(e) for e in events if not isinstance(e, Finish))
    return body + encoder.finish(finish, usage, dict(EXTRAS))


def test_sdk_streams_the_encoded_events_into_a_final_message() -> None:
    events: list[StreamEvent] = [
        Start("chatcmpl-7", "gpt-4o-mini"),
        TextDelta("Let me "),
        TextDelta("check."),
        ToolCallStart(0, "call_1", "w"),
        ToolArgsDelta(0, '{"ci'),
        ToolArgsDelta(0, 'ty": "Rome"}'),
        ToolCallStart(1, "call_2", "w"),
        ToolArgsDelta(1, '{"city": "Oslo"}'),
        Finish("tool_calls"),
    ]

    def handler(request: httpx2.Request) -> httpx2.Response:
        data = stream_bytes(events, Usage(30, 12))
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    with sdk_client(handler).messages.stream(
        model="auto", max_tokens=64, tools=SDK_TOOLS, messages=[{"role": "user", "content": "?"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.id == "msg_chatcmpl-7"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].type == "text" and final.content[0].text == "Let me check."
    assert [b.input for b in final.content if b.type == "tool_use"] == [{"city": "Rome"}, {"city": "Oslo"}]
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 12)


def test_sdk_raises_on_the_encoded_error_event() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        encoder = INBOUND.stream_encoder("auto", include_usage=True)
        data = encoder.encode(TextDelta("Once")) + encoder.error(FaregateError("upstream went away"))
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    stream = sdk_client(handler).messages.create(
        model="auto", max_tokens=64, messages=[{"role": "user", "content": "?"}], stream=True
    )
    with pytest.raises(anthropic.APIStatusError, match="upstream went away"):
        for _ in stream:
            pass


# --- properties ---------------------------------------------------------------------------------------------

RAW_TOOL_STREAM = raw("stream_tool_use.sse")


@given(st.sets(st.integers(1, len(RAW_TOOL_STREAM) - 1), max_size=40).map(sorted))
def test_chunk_splits_do_not_change_events_or_the_collected_message(cuts: list[int]) -> None:
    edges, sse = [0, *cuts, len(RAW_TOOL_STREAM)], SseDecoder()
    events = [ev for a, b in pairwise(edges) for ev in sse.feed(RAW_TOOL_STREAM[a:b])] + sse.close()
    decoded = decode(events)
    assert decoded == decode(sse_events(RAW_TOOL_STREAM))
    assert collect_stream(decoded) == ADAPTER.parse_chat_response(raw("message_tool_use.json"))


TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True)
ARG_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
ARGUMENTS = st.dictionaries(st.text(max_size=8), ARG_VALUES, max_size=4).map(json.dumps)
IMAGES = st.one_of(
    TEXT.map(lambda t: ImagePart(url=f"https://example.com/{t}.png")),
    st.builds(
        lambda data, media: ImagePart(data_b64=data, media_type=media),
        st.from_regex(r"[A-Za-z0-9+/]{4,16}={0,2}", fullmatch=True),
        st.sampled_from(["image/jpeg", "image/png", "image/gif", "image/webp"]),
    ),
)
PARTS = st.lists(st.one_of(TEXT.map(TextPart), IMAGES), min_size=1, max_size=3).map(tuple)


@st.composite
def conversations(draw: st.DrawFn) -> ChatRequest:
    """A valid OpenAI-style order: user turns, an assistant turn, results for each of its tool calls."""
    messages: list[Message] = []
    if draw(st.booleans()):
        messages.append(Message("system", (TextPart(draw(TEXT)),)))
    calls_made = 0
    for _ in range(draw(st.integers(1, 3))):
        messages.extend(Message("user", draw(PARTS)) for _ in range(draw(st.integers(1, 2))))
        n_calls = draw(st.integers(0, 2))
        calls = tuple(
            ToolCall(f"toolu_{calls_made + i}", draw(NAMES), draw(ARGUMENTS)) for i in range(n_calls)
        )
        calls_made += n_calls
        text = draw(st.one_of(st.just(""), TEXT)) if calls else draw(TEXT)
        messages.append(Message("assistant", (TextPart(text),) if text else (), tool_calls=calls))
        for call in calls:
            result: tuple[Part, ...] = draw(st.one_of(st.just(()), PARTS))
            messages.append(Message("tool", result, tool_call_id=call.id, is_error=draw(st.booleans())))
    names = sorted({c.name for m in messages for c in m.tool_calls})
    tools = tuple(Tool(n, draw(st.none() | TEXT), {"type": "object", "properties": {}}) for n in names)
    return ChatRequest(model=None, messages=tuple(messages), tools=tools)


def part_key(p: Part) -> tuple[Any, ...]:
    if isinstance(p, TextPart):
        return ("text", p.text)
    return ("image", p.url, p.data_b64, p.media_type)


def flatten(messages: tuple[Message, ...]) -> Iterator[tuple[Any, ...]]:
    """The conversation without turn boundaries (which merging may move), keeping every item's order."""
    for m in messages:
        parts = tuple(part_key(p) for p in m.content if not (isinstance(p, TextPart) and not p.text))
        if m.role == "tool":
            yield ("tool", m.tool_call_id, m.is_error, parts)
        else:
            yield from ((m.role, *k) for k in parts)
        yield from (("call", c.id, c.name, json.loads(c.arguments)) for c in m.tool_calls)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_canonical_to_anthropic_and_back_keeps_the_conversation(req: ChatRequest) -> None:
    again, _ = INBOUND.parse_chat(body_of(req))
    system = [m for m in req.messages if m.role == "system"]
    assert [m.text for m in again.messages if m.role == "system"] == [m.text for m in system]
    assert list(flatten(again.messages)) == list(flatten(req.messages))
    assert [(t.name, t.description, dict(t.parameters)) for t in again.tools] == [
        (t.name, t.description, dict(t.parameters)) for t in req.tools
    ]


USAGES = st.builds(
    lambda cr, cw, fresh, out: Usage(cr + cw + fresh, out, cr, cw),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**5),
)


@st.composite
def event_streams(draw: st.DrawFn) -> list[StreamEvent]:
    events: list[StreamEvent] = [Start(draw(st.from_regex(r"(msg_)?[a-z0-9-]{1,12}", fullmatch=True)), "up")]
    tools = 0
    for kind in draw(st.lists(st.sampled_from(["text", "tool", "args"]), max_size=10)):
        if kind == "text":
            events.append(TextDelta(draw(TEXT)))
        elif kind == "tool":
            events.append(ToolCallStart(tools, f"toolu_{tools}", draw(NAMES)))
            tools += 1
        elif tools:
            events.append(ToolArgsDelta(draw(st.integers(0, tools - 1)), draw(TEXT)))
    reasons: list[FinishReason] = ["stop", "length", "tool_calls", "content_filter"]
    reason = draw(st.sampled_from(reasons))
    events.append(Finish(reason, draw(USAGES)))
    return events


@settings(max_examples=150)
@given(event_streams())
def test_encoder_output_decodes_back_to_the_same_events(events: list[StreamEvent]) -> None:
    finish = events[-1]
    assert isinstance(finish, Finish) and finish.usage is not None
    data = stream_bytes(events, finish.usage)
    check_sdk_events(data)
    start = events[0]
    assert isinstance(start, Start)
    rid = start.id if start.id.startswith("msg_") else "msg_" + start.id
    expected = [Start(rid, "auto", Usage()), *events[1:]]
    assert decode(sse_events(data)) == expected
