"""The gemini wire format: golden payloads, request rendering, errors, and round-trip properties."""

from __future__ import annotations

import base64
import json
from itertools import count, pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    Finish,
    ImagePart,
    Message,
    Part,
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
from faregate.providers.base import Adapter, Target
from faregate.providers.gemini import GeminiAdapter, GeminiStreamDecoder, StreamError
from faregate.providers.gemini.schema import strip_schema
from faregate.providers.sse import SseDecoder, SseEvent

DATA = Path(__file__).parent.parent / "data" / "gemini"
ADAPTER: Adapter = GeminiAdapter()  # also checks, under mypy, that it satisfies the Adapter protocol
KEY = "AIzaSyTest-key-0123456789abcdefghijklmn"
TARGET = Target(
    base_url="https://generativelanguage.googleapis.com/v1beta/", upstream_id="gemini-2.0-flash", api_key=KEY
)
HI = Message("user", (TextPart("Hi"),))


def golden(name: str) -> bytes:
    return (DATA / name).read_bytes()


def body_of(req: ChatRequest) -> dict[str, Any]:
    call = ADAPTER.chat_request(req, TARGET)
    assert call.body is not None
    data: dict[str, Any] = json.loads(call.body)
    return data


def chat(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(model="google/gemini-2.0-flash", messages=messages, **fields)


def decode_stream(raw: bytes) -> list[StreamEvent]:
    sse, decoder = SseDecoder(), ADAPTER.stream_decoder()
    events = [ev for sse_ev in sse.feed(raw) + sse.close() for ev in decoder.feed(sse_ev)]
    return events + decoder.close()


# --- golden payloads --------------------------------------------------------------------------------


def test_text_response() -> None:
    resp = ADAPTER.parse_chat_response(golden("text_response.json"))
    assert resp == ChatResponse(
        id="8Wk8aP3FJqWgz7IPxNb-kAM",
        model="gemini-2.5-flash",
        text="AI learns patterns from data to make predictions or decisions.",
        finish_reason="stop",
        usage=Usage(prompt_tokens=8, completion_tokens=11 + 623),
    )


def test_function_call_response() -> None:
    resp = ADAPTER.parse_chat_response(golden("function_call_response.json"))
    args = '{"attendees":["Bob","Alice"],"date":"2025-03-27","time":"10:00","topic":"Q3 planning"}'
    assert resp.tool_calls == (ToolCall("call_0", "schedule_meeting", args),)
    assert (resp.text, resp.finish_reason) == ("", "tool_calls")
    assert resp.usage == Usage(124, 38 + 115)


def test_text_stream_event_by_event() -> None:
    assert decode_stream(golden("text_stream.sse")) == [
        Start("IZI2acSKMoWl0-kPmYj2yQc", "gemini-2.0-flash"),
        TextDelta("Once upon a time, in a sunlit flat above a bakery,"),
        TextDelta(" lived a marmalade kitten named Biscuit who believed every sunbeam"),
        TextDelta(" was a warm blanket left just for her. ¡Miau! \U0001f431\n"),
        Finish("stop", Usage(7, 40)),
    ]


def test_function_call_stream_event_by_event() -> None:
    assert decode_stream(golden("function_call_stream.sse")) == [
        Start("Nsk2acbKMJ2Rvr0Pjp7k8Qs", "gemini-2.5-flash"),
        TextDelta("I'll look up the weather in both cities."),  # the thought part before it is skipped
        ToolCallStart(0, "call_0", "getWeather"),
        ToolArgsDelta(0, '{"location":"Tokyo","unit":"celsius"}'),
        ToolCallStart(1, "call_1", "getWeather"),
        ToolArgsDelta(1, '{"location":"Zürich","unit":"celsius"}'),
        Finish("tool_calls", Usage(83, 45 + 104)),
    ]


STREAMS = [
    ("text_stream.sse", "text_stream_equivalent.json"),
    ("function_call_stream.sse", "function_call_stream_equivalent.json"),
]


@pytest.mark.parametrize(("stream", "equivalent"), STREAMS)
@settings(max_examples=60)
@given(data=st.data())
def test_stream_ignores_chunk_boundaries_and_matches_non_streaming(
    stream: str, equivalent: str, data: st.DataObject
) -> None:
    raw = golden(stream)
    cuts = data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=12).map(sorted))
    sse, decoder = SseDecoder(), ADAPTER.stream_decoder()
    events: list[StreamEvent] = []
    for a, b in pairwise([0, *cuts, len(raw)]):
        for ev in sse.feed(raw[a:b]):
            events.extend(decoder.feed(ev))
    for ev in sse.close():
        events.extend(decoder.feed(ev))
    events += decoder.close()
    assert events == decode_stream(raw)
    assert collect_stream(events) == ADAPTER.parse_chat_response(golden(equivalent))


def test_feed_never_finishes_and_empty_stream_is_an_error() -> None:
    decoder = GeminiStreamDecoder()
    for line in golden("text_stream.sse").split(b"\r\n\r\n"):
        if line:
            assert not any(isinstance(e, Finish) for e in decoder.feed(SseEvent(line[6:].decode())))
    assert GeminiStreamDecoder().close() == [Finish("error")]


def test_stream_error_chunk_raises_classified_and_masked() -> None:
    chunk = {"error": {"code": 503, "message": f"overloaded {KEY}", "status": "UNAVAILABLE"}}
    with pytest.raises(StreamError) as info:
        GeminiStreamDecoder().feed(SseEvent(json.dumps(chunk)))
    err = info.value.error
    assert (err.status, err.retryable, err.error_type) == (503, True, "UNAVAILABLE")
    assert err.message.startswith("UNAVAILABLE: overloaded ") and KEY not in err.message
    with pytest.raises(StreamError) as bad:
        GeminiStreamDecoder().feed(SseEvent('{"candidates": [{"content": {"parts": "x"}}]}'))
    assert (bad.value.error.kind, bad.value.error.retryable) == ("protocol", True)


def test_stream_cut_short_finishes_in_error() -> None:
    decoder = GeminiStreamDecoder()
    first = golden("text_stream.sse").split(b"\r\n\r\n")[0]
    decoder.feed(SseEvent(first[len(b"data: ") :].decode()))
    assert decoder.close() == [Finish("error", Usage(7, 12))]


def test_stream_blocked_prompt_finishes_content_filter() -> None:
    decoder = GeminiStreamDecoder()
    chunk = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}
    [start] = decoder.feed(SseEvent(json.dumps(chunk)))
    assert isinstance(start, Start) and start.id.startswith("gen-") and start.model == ""
    assert decoder.close() == [Finish("content_filter", Usage(5, 0))]


# --- responses ----------------------------------------------------------------------------------------


FINISH_TABLE = [
    ("STOP", "stop"),
    ("MAX_TOKENS", "length"),
    ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"),
    ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"),
    ("SPII", "content_filter"),
    ("OTHER", "stop"),
    ("LANGUAGE", "stop"),
    ("MALFORMED_FUNCTION_CALL", "stop"),
    ("FINISH_REASON_UNSPECIFIED", "stop"),
]


@pytest.mark.parametrize(("raw", "expected"), FINISH_TABLE)
def test_finish_reason_table(raw: str, expected: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": raw}]}
    assert ADAPTER.parse_chat_response(json.dumps(body).encode()).finish_reason == expected


def test_usage_mapping_and_thoughts_skipped() -> None:
    body = {
        "candidates": [
            {
                "content": {"parts": [{"text": "thinking...", "thought": True}, {"text": "42"}]},
                "finishReason": "MAX_TOKENS",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "thoughtsTokenCount": 30,
            "cachedContentTokenCount": 64,
            "totalTokenCount": 150,
        },
    }
    resp = ADAPTER.parse_chat_response(json.dumps(body).encode())
    assert (resp.text, resp.finish_reason) == ("42", "length")
    assert resp.usage == Usage(prompt_tokens=100, completion_tokens=50, cache_read_tokens=64)
    assert resp.id.startswith("gen-") and resp.model == ""


def test_function_call_id_kept_when_given() -> None:
    part = {"functionCall": {"id": "fc_9", "name": "f", "args": {"a": 1}}}
    body = {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}
    assert ADAPTER.parse_chat_response(json.dumps(body).encode()).tool_calls == (
        ToolCall("fc_9", "f", '{"a":1}'),
    )


def test_blocked_prompt_is_content_filter() -> None:
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}}
    resp = ADAPTER.parse_chat_response(json.dumps(body).encode())
    assert (resp.text, resp.finish_reason, resp.usage) == ("", "content_filter", Usage(9, 0))


def test_safety_stop_without_content() -> None:
    body = {"candidates": [{"finishReason": "SAFETY", "index": 0}]}
    resp = ADAPTER.parse_chat_response(json.dumps(body).encode())
    assert (resp.text, resp.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b"{}", b'{"candidates": {}}', b'{"candidates": [{"content": {"parts": [7]}}]}'],
)
def test_malformed_response_raises_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        ADAPTER.parse_chat_response(body)


# --- requests -----------------------------------------------------------------------------------------


def test_urls_and_key_only_in_header() -> None:
    call = ADAPTER.chat_request(chat(HI), TARGET)
    assert call.method == "POST"
    assert (
        call.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    )
    assert call.headers == {"Content-Type": "application/json", "x-goog-api-key": KEY}
    assert KEY not in call.url and call.body is not None and KEY.encode() not in call.body
    stream = ADAPTER.chat_request(chat(HI, stream=True), TARGET)
    assert stream.url.endswith("/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
    assert KEY not in stream.url and "key=" not in stream.url


def test_listing_style_model_id() -> None:
    target = Target("https://g.example/v1beta", "models/gemini-2.0-flash", api_key=None)
    call = ADAPTER.chat_request(chat(HI), target)
    assert call.url == "https://g.example/v1beta/models/gemini-2.0-flash:generateContent"
    assert "x-goog-api-key" not in call.headers


def test_system_instruction() -> None:
    body = body_of(
        chat(
            Message("system", (TextPart("Be brief."),)),
            HI,
            Message("system", (TextPart("Answer in French."),)),
        )
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_consecutive_roles_merge_and_tool_results_join_the_user_turn() -> None:
    calls = (ToolCall("a", "get_time", "{}"), ToolCall("b", "get_weather", '{"city":"Paris"}'))
    body = body_of(
        chat(
            Message("user", (TextPart("one"),)),
            Message("user", (TextPart("two"),)),
            Message("assistant", (TextPart("Checking."),), tool_calls=calls),
            Message("tool", (TextPart('{"weather":"sunny"}'),), tool_call_id="b"),
            Message("tool", (TextPart("12:00"),), tool_call_id="a"),
            Message("user", (TextPart("thanks"),)),
        )
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "get_time", "args": {}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"weather": "sunny"}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "12:00"}}},
                {"text": "thanks"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("result", "response"),
    [('{"ok": true}', {"ok": True}), ("[1, 2]", {"content": "[1, 2]"}), ("plain", {"content": "plain"})],
)
def test_function_response_object(result: str, response: dict[str, Any]) -> None:
    msgs = (
        Message("assistant", tool_calls=(ToolCall("x", "lookup", '{"q": 1}'),)),
        Message("tool", (TextPart(result),), tool_call_id="x"),
    )
    part = body_of(chat(HI, *msgs))["contents"][2]["parts"][0]
    assert part == {"functionResponse": {"name": "lookup", "response": response}}


def test_tool_result_images_follow_the_function_response() -> None:
    msgs = (
        Message("assistant", tool_calls=(ToolCall("s", "screenshot", "{}"),)),
        Message(
            "tool", (TextPart("done"), ImagePart(data_b64="AAAA", media_type="image/png")), tool_call_id="s"
        ),
    )
    assert body_of(chat(HI, *msgs))["contents"][2]["parts"] == [
        {"functionResponse": {"name": "screenshot", "response": {"content": "done"}}},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
    ]


def test_images_inline_url_and_data_url() -> None:
    parts: tuple[Part, ...] = (
        ImagePart(data_b64="iVBORw0KGgo=", media_type="image/png"),
        ImagePart(url="https://example.com/cat.PNG?size=large"),
        ImagePart(url="https://example.com/render"),
        ImagePart(url="gs://bucket/photo.webp"),
        ImagePart(url="data:image/gif;base64,R0lGODlh"),
    )
    assert body_of(chat(Message("user", parts)))["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.PNG?size=large"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/render"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "gs://bucket/photo.webp"}},
        {"inlineData": {"mimeType": "image/gif", "data": "R0lGODlh"}},
    ]


def test_schema_stripping() -> None:
    params = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "additionalProperties": {"type": "string", "$comment": "a property may be called anything"},
            "tags": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "note": {"type": ["string", "null"], "const": "x"},
            "choice": {"anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"$ref": "#/$defs/Point"}]},
        },
        "required": ["tags"],
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "strict": True}},
    }
    assert strip_schema(params) == {
        "type": "object",
        "properties": {
            "additionalProperties": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "object"}},
            "note": {"type": "string", "nullable": True},
            "choice": {
                "anyOf": [{"type": "integer"}, {"type": "object", "properties": {"x": {"type": "number"}}}]
            },
        },
        "required": ["tags"],
    }


def test_tools_declarations() -> None:
    tools = (
        Tool(
            "get_weather",
            "Weather for a city",
            {"type": "object", "properties": {"city": {"type": "string"}}},
        ),
        Tool("now", None, {"type": "object", "properties": {}, "additionalProperties": False}),
    )
    assert body_of(chat(HI, tools=tools))["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
                {"name": "now"},
            ]
        }
    ]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("tool", "now"), {"mode": "ANY", "allowedFunctionNames": ["now"]}),
    ],
)
def test_tool_config_modes(choice: ToolChoice, config: dict[str, Any]) -> None:
    body = body_of(chat(HI, tools=(Tool("now"),), tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_generation_config_and_dropped_fields() -> None:
    req = chat(
        HI,
        max_tokens=256,
        temperature=2.5,
        top_p=0.9,
        stop=("END",),
        user="u-1",
        response_format={"type": "json_object"},
        extra={"seed": 7, "logprobs": True},
    )
    call = ADAPTER.chat_request(req, TARGET)
    assert call.body is not None
    assert json.loads(call.body)["generationConfig"] == {
        "maxOutputTokens": 256,
        "temperature": 2.0,
        "topP": 0.9,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "seed": 7,  # OpenAI's seed is Gemini's too (providers/fields.py SAMPLING)
    }
    assert set(call.dropped) == {"user", "logprobs"}
    assert "generationConfig" not in body_of(chat(HI))


def test_json_schema_response_format() -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "additionalProperties": False,
            },
        },
    }
    assert body_of(chat(HI, response_format=fmt))["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
    }


def test_gemini_source_extra_is_merged() -> None:
    extra = {"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT"}], "generationConfig": {"topK": 4}}
    call = ADAPTER.chat_request(chat(HI, temperature=0.5, source_api="gemini", extra=extra), TARGET)
    assert call.body is not None and call.dropped == ()
    body = json.loads(call.body)
    assert body["generationConfig"] == {"temperature": 0.5, "topK": 4}
    assert body["safetySettings"] == [{"category": "HARM_CATEGORY_HARASSMENT"}]


# --- embeddings ---------------------------------------------------------------------------------------


def test_embeddings_request_and_response() -> None:
    target = Target("https://generativelanguage.googleapis.com/v1beta", "text-embedding-004", api_key=KEY)
    call = ADAPTER.embeddings_request(EmbeddingRequest("google/text-embedding-004", ("a", "b"), 256), target)
    assert call.url.endswith("/models/text-embedding-004:batchEmbedContents")
    assert call.headers["x-goog-api-key"] == KEY and call.body is not None
    model = "models/text-embedding-004"
    assert json.loads(call.body) == {
        "requests": [
            {"model": model, "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 256},
            {"model": model, "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 256},
        ]
    }
    resp = ADAPTER.parse_embeddings_response(b'{"embeddings": [{"values": [0.5, -1]}, {"values": [0]}]}')
    assert resp.vectors == ((0.5, -1.0), (0.0,))
    assert resp.usage == Usage(0, 0, estimated=True)
    with pytest.raises(ValueError):
        ADAPTER.parse_embeddings_response(b'{"embeddings": [{"values": ["x"]}]}')


# --- errors -------------------------------------------------------------------------------------------


def envelope(code: int, status: str, message: str = "m") -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "retryable", "error_type"),
    [
        (400, envelope(400, "INVALID_ARGUMENT"), False, "INVALID_ARGUMENT"),
        (400, golden("error_400_api_key.json"), True, "INVALID_ARGUMENT"),
        (400, envelope(400, "FAILED_PRECONDITION"), True, "FAILED_PRECONDITION"),
        (401, envelope(401, "UNAUTHENTICATED"), True, "UNAUTHENTICATED"),
        (403, envelope(403, "PERMISSION_DENIED"), True, "PERMISSION_DENIED"),
        (404, envelope(404, "NOT_FOUND"), True, "NOT_FOUND"),
        (408, b"", True, None),
        (409, envelope(409, "ABORTED"), False, "ABORTED"),
        (413, b"<html>too big</html>", False, None),
        (429, golden("error_429.json"), True, "RESOURCE_EXHAUSTED"),
        (500, envelope(500, "INTERNAL"), True, "INTERNAL"),
        (503, envelope(503, "UNAVAILABLE"), True, "UNAVAILABLE"),
        (504, envelope(504, "DEADLINE_EXCEEDED"), True, "DEADLINE_EXCEEDED"),
    ],
)
def test_error_classification(status: int, body: bytes, retryable: bool, error_type: str | None) -> None:
    err = ADAPTER.classify_error(status, body)
    assert (err.kind, err.status, err.retryable, err.error_type) == ("status", status, retryable, error_type)


def test_error_messages_are_short_masked_and_never_the_body() -> None:
    err = ADAPTER.classify_error(429, golden("error_429.json"))
    assert err.message.startswith("RESOURCE_EXHAUSTED: You exceeded your current quota")
    assert "quotaMetric" not in err.message and len(err.message) <= 300
    key_err = ADAPTER.classify_error(400, golden("error_400_api_key.json"))
    assert key_err.message == "INVALID_ARGUMENT: API key not valid. Please pass a valid API key."
    leaky = ADAPTER.classify_error(400, envelope(400, "INVALID_ARGUMENT", f"bad key {KEY} " + "x" * 400))
    assert KEY not in leaky.message and "[redacted]" in leaky.message and len(leaky.message) == 300
    html = ADAPTER.classify_error(502, b"<html>secret upstream page</html>")
    assert html.message == "HTTP 502 Bad Gateway"
    wrapped = ADAPTER.classify_error(503, b"[" + envelope(503, "UNAVAILABLE", "overloaded") + b"]")
    assert wrapped.message == "UNAVAILABLE: overloaded"


# --- round trip: canonical -> Gemini request -> canonical (a test-only reverse parser) -----------------


def reverse_request(body: dict[str, Any]) -> list[Message]:
    """Gemini request → canonical messages. Tool call ids are invented; results find theirs by name."""
    out: list[Message] = []
    if "systemInstruction" in body:
        out.append(Message("system", tuple(TextPart(p["text"]) for p in body["systemInstruction"]["parts"])))
    waiting: dict[str, list[str]] = {}  # function name -> ids of its calls not answered yet
    ids = count()
    for turn in body["contents"]:
        if turn["role"] == "model":
            calls = []
            for p in turn["parts"]:
                if "functionCall" in p:
                    fc, call_id = p["functionCall"], f"r{next(ids)}"
                    waiting.setdefault(fc["name"], []).append(call_id)
                    calls.append(ToolCall(call_id, fc["name"], json.dumps(fc["args"])))
            content = tuple(reverse_part(p) for p in turn["parts"] if "functionCall" not in p)
            out.append(Message("assistant", content, tuple(calls)))
            continue
        pending: list[Part] = []
        for p in turn["parts"]:
            if "functionResponse" not in p:
                pending.append(reverse_part(p))
                continue
            if pending:
                out.append(Message("user", tuple(pending)))
                pending = []
            fr = p["functionResponse"]
            text = TextPart(json.dumps(fr["response"]))
            out.append(Message("tool", (text,), tool_call_id=waiting[fr["name"]].pop(0)))
        if pending:
            out.append(Message("user", tuple(pending)))
    return out


def reverse_part(part: dict[str, Any]) -> Part:
    if "text" in part:
        return TextPart(part["text"])
    if "inlineData" in part:
        return ImagePart(data_b64=part["inlineData"]["data"], media_type=part["inlineData"]["mimeType"])
    return ImagePart(url=part["fileData"]["fileUri"])


def result_object(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return {"content": text}
    return value if isinstance(value, dict) else {"content": text}


def flatten(messages: list[Message]) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    """System texts, and the turns as Gemini sees them: (role, items), same roles merged."""
    system: list[str] = []
    turns: list[tuple[str, list[Any]]] = []
    names: dict[str, str] = {}
    for m in messages:
        if m.role == "system":
            system += [p.text for p in m.content if isinstance(p, TextPart)]
            continue
        items: list[Any] = []
        if m.role == "tool":
            items.append(("result", names[m.tool_call_id or ""], result_object(m.text)))
        for p in m.content:
            if isinstance(p, TextPart):
                items += [("text", p.text)] if m.role != "tool" else []
            else:
                items.append(("image", p.data_b64, p.media_type) if p.data_b64 else ("image", p.url))
        for c in m.tool_calls:
            names[c.id] = c.name
            items.append(("call", c.name, json.loads(c.arguments)))
        role = "model" if m.role == "assistant" else "user"
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(items)
        else:
            turns.append((role, items))
    return system, turns


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
TEXTS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)
IMAGES = st.builds(
    lambda raw, mime: ImagePart(data_b64=base64.b64encode(raw).decode(), media_type=mime),
    st.binary(min_size=1, max_size=12),
    st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
) | st.builds(
    lambda n, ext: ImagePart(url=f"https://img.example/{n}.{ext}"), NAMES, st.sampled_from(["png", "jpg"])
)
PARTS = st.lists(st.builds(TextPart, TEXTS) | IMAGES, min_size=1, max_size=3).map(tuple)


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    msgs: list[Message] = []
    if draw(st.booleans()):
        msgs.append(Message("system", (TextPart(draw(TEXTS)),)))
    for turn in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["user", "assistant", "tools"]))
        if kind == "user":
            msgs.append(Message("user", draw(PARTS)))
        elif kind == "assistant":
            msgs.append(Message("assistant", (TextPart(draw(TEXTS)),)))
        else:
            names = draw(st.lists(NAMES, min_size=1, max_size=3))
            args = [
                json.dumps(draw(st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3))) for _ in names
            ]
            calls = tuple(
                ToolCall(f"id{turn}_{i}", n, a) for i, (n, a) in enumerate(zip(names, args, strict=True))
            )
            text = (TextPart(draw(TEXTS)),) if draw(st.booleans()) else ()
            msgs.append(Message("assistant", text, calls))
            results = draw(
                st.lists(TEXTS | JSON_VALUES.map(json.dumps), min_size=len(calls), max_size=len(calls))
            )
            for call, result in zip(calls, results, strict=True):
                msgs.append(Message("tool", (TextPart(result),), tool_call_id=call.id))
    return msgs


@settings(max_examples=200)
@given(conversations())
def test_round_trip_keeps_content_roles_tools_and_order(messages: list[Message]) -> None:
    body = body_of(chat(*messages))
    roles = [turn["role"] for turn in body["contents"]]
    assert all(a != b for a, b in pairwise(roles)), "consecutive same-role turns must be merged"
    assert flatten(reverse_request(body)) == flatten(messages)
