"""Gemini clients (`/v1beta/models/{model}:generateContent`): the request parser, the response and stream
renderers, and round-trip properties against the Gemini upstream adapter (which speaks the same format the
other way): a request parsed and rendered again is the request; a rendered answer parses back to itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faregate.canonical import (
    ChatResponse,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolArgsDelta,
    ToolCall,
    ToolCallStart,
    Usage,
    collect_stream,
)
from faregate.errors import InvalidRequest, ModelNotFound, RateLimited, google_envelope
from faregate.providers.base import Inbound, Target
from faregate.providers.fields import translate_extra
from faregate.providers.gemini import GeminiAdapter, GeminiInbound, GeminiStreamDecoder
from faregate.providers.gemini.inbound import json_schema, parse_request
from faregate.providers.gemini.response import parse_chat_response
from faregate.providers.sse import SseDecoder

INBOUND: Inbound = GeminiInbound("gemini-2.5-flash")  # also checks the Inbound protocol under mypy
TARGET = Target("https://generativelanguage.googleapis.com/v1beta", "gemini-2.5-flash", "k")


def user(*parts: dict[str, Any], role: str | None = "user") -> dict[str, Any]:
    content: dict[str, Any] = {"parts": list(parts)}
    if role is not None:
        content["role"] = role
    return content


def upstream_body(body: dict[str, Any]) -> dict[str, Any]:
    """What the Gemini adapter sends for a Gemini client's request."""
    req, _ = parse_request(body, "gemini-2.5-flash", stream=False)
    call = GeminiAdapter().chat_request(req, TARGET)
    assert call.body is not None
    sent: dict[str, Any] = json.loads(call.body)
    return sent


# --- parsing ---------------------------------------------------------------------------------------


def test_a_conversation_with_a_function_call_and_its_response() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            user({"text": "Weather in Oslo?"}),
            user({"functionCall": {"name": "w", "args": {"city": "Oslo"}}}, role="model"),
            user({"functionResponse": {"name": "w", "response": {"content": "Sunny"}}}, {"text": "And?"}),
        ],
        "tools": [{"functionDeclarations": [{"name": "w", "description": "weather"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["w"]}},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 99, "topK": 5.0, "seed": 3},
    }
    req, routing = parse_request(body, "models/gemini-2.5-flash", stream=True)
    assert routing == {} and req.model == "gemini-2.5-flash" and req.stream and req.source_api == "gemini"
    system, asked, model, result, more = req.messages
    assert system == Message("system", (TextPart("Be brief."),))
    assert asked.text == "Weather in Oslo?"
    assert model.tool_calls == (ToolCall("call_0", "w", '{"city":"Oslo"}'),)
    assert (result.role, result.tool_call_id, result.name, result.text) == ("tool", "call_0", "w", "Sunny")
    assert more == Message("user", (TextPart("And?"),))
    assert req.tools[0].parameters == {"type": "object", "properties": {}}
    assert req.tool_choice is not None and (req.tool_choice.mode, req.tool_choice.name) == ("tool", "w")
    assert (req.temperature, req.max_tokens, req.top_k) == (0.2, 99, 5)
    assert dict(req.extra) == {"generationConfig.seed": 3}


def test_responses_pair_with_calls_by_id_or_else_by_name_in_order() -> None:
    calls = [
        {"functionCall": {"name": "a", "args": {}}},
        {"functionCall": {"name": "a", "args": {"n": 2}}},
        {"functionCall": {"id": "given", "name": "b", "args": {}}},
    ]
    responses = [
        {"functionResponse": {"id": "given", "name": "b", "response": {"x": 1}}},
        {"functionResponse": {"name": "a", "response": {"error": "boom"}}},
        {"functionResponse": {"name": "a", "response": {"output": "two"}}},
    ]
    req, _ = parse_request(
        {"contents": [user({"text": "go"}), user(*calls, role="model"), user(*responses)]}, "m", stream=False
    )
    ids = [c.id for c in req.messages[1].tool_calls]
    assert ids == ["call_0", "call_1", "given"]
    results = [(m.tool_call_id, m.text, m.is_error) for m in req.messages[2:]]
    assert results == [("given", '{"x":1}', False), ("call_0", "boom", True), ("call_1", "two", False)]


def test_snake_case_thoughts_images_and_the_json_schema_dialect() -> None:
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [{"inline_data": {"mime_type": "image/png", "data": "AAAA"}}, {"text": ""}],
            },
            {
                "role": "model",
                "parts": [{"text": "hmm", "thought": True}, {"thought_signature": "c2ln"}, {"text": "ok"}],
            },
            {"parts": [{"file_data": {"file_uri": "https://x/cat.jpg", "mime_type": "image/jpeg"}}]},
        ],
        "generation_config": {
            "response_mime_type": "application/json",
            "response_schema": {
                "type": "OBJECT",
                "properties": {
                    "n": {"type": "INTEGER", "nullable": True},
                    "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
                },
                "propertyOrdering": ["n", "tags"],
            },
        },
    }
    req, _ = parse_request(body, "m", stream=False)
    image, model, url = req.messages
    assert image.content == (ImagePart(data_b64="AAAA", media_type="image/png"),)
    assert model == Message("assistant", (TextPart("ok"),))
    assert url.content == (ImagePart(url="https://x/cat.jpg", media_type="image/jpeg"),)
    assert req.response_format == {
        "type": "json_schema",
        "json_schema": {
            "name": "response",
            "schema": {
                "type": "object",
                "properties": {
                    "n": {"type": ["integer", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }


def test_other_response_types_and_json_without_schema() -> None:
    enum = {"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING", "enum": ["a"]}}
    req, _ = parse_request({"contents": [user({"text": "x"})], "generationConfig": enum}, "m", stream=False)
    assert req.response_format is None
    assert dict(req.extra) == {f"generationConfig.{k}": v for k, v in enum.items()}
    assert (
        upstream_body({"contents": [user({"text": "x"})], "generationConfig": enum})["generationConfig"]
        == enum
    )
    plain = {"contents": [user({"text": "x"})], "generationConfig": {"responseMimeType": "application/json"}}
    assert parse_request(plain, "m", stream=False)[0].response_format == {"type": "json_object"}


def test_routing_fields_are_consumed_and_unknown_fields_kept_for_gemini() -> None:
    body = {"contents": [user({"text": "x"})], "provider": {"order": ["google"]}, "cachedContent": "c/1"}
    req, routing = parse_request(body, None, stream=False)
    assert routing == {"provider": {"order": ["google"]}} and dict(req.extra) == {"cachedContent": "c/1"}
    assert req.model is None  # no model in the URL or the body: routed as `auto`
    assert parse_request({**body, "model": "models/x"}, None, stream=False)[0].model == "x"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": "hi"}, "contents"),
        ({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "contents.0.role"),
        ({"contents": [user({"foo": 1})]}, "contents.0.parts.0"),
        ({"contents": [user({"text": 3})]}, "contents.0.parts.0.text"),
        (
            {"contents": [user({"inlineData": {"mimeType": "application/pdf", "data": "x"}})]},
            "contents.0.parts.0.inlineData.mimeType",
        ),
        ({"contents": [user({"executableCode": {"code": "1"}})]}, "contents.0.parts.0.executableCode"),
        ({"contents": [user({"functionCall": {"name": "f"}})]}, "contents.0"),
        (
            {"contents": [user({"functionResponse": {"name": "f", "response": 3}})]},
            "contents.0.parts.0.functionResponse.response",
        ),
        ({"contents": [user({"text": "x"})], "tools": [{"googleSearch": {}}]}, "tools.0.googleSearch"),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"candidateCount": 2}},
            "generationConfig.candidateCount",
        ),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"temperature": 3}},
            "generationConfig.temperature",
        ),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"stopSequences": "x"}},
            "generationConfig.stopSequences",
        ),
        ({"contents": [user({"text": "x"})], "provider": "openai"}, "provider"),
        (
            {
                "contents": [user({"text": "x"})],
                "tools": [{"functionDeclarations": [{"name": "f"}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}},
            },
            "toolConfig.functionCallingConfig",
        ),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request(body, "m", stream=False)
    assert info.value.param == param and info.value.status == 400


def test_googles_error_envelope() -> None:
    assert google_envelope(ModelNotFound("no such model")) == {
        "error": {"code": 404, "message": "no such model", "status": "NOT_FOUND"}
    }
    assert (
        google_envelope(RateLimited("slow down", retry_after_s=3))["error"]["status"] == "RESOURCE_EXHAUSTED"
    )
    assert google_envelope(InvalidRequest("bad"))["error"]["status"] == "INVALID_ARGUMENT"


# --- rendering -------------------------------------------------------------------------------------

EXTRAS = {"cost": 0.0012, "x-faregate": {"request_id": "r1", "routing": {"provider": "openai"}}}


def test_render_a_response_with_text_calls_and_usage() -> None:
    resp = ChatResponse("up", "gpt", "Let me look.", (ToolCall("c1", "w", '{"city":"Oslo"}'),), "tool_calls")
    usage = Usage(100, 30, cache_read_tokens=40, reasoning_tokens=10)
    wire = INBOUND.render_chat(resp, "openai/gpt-4o-mini", usage, dict(EXTRAS))
    assert wire == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Let me look."},
                        {"functionCall": {"id": "c1", "name": "w", "args": {"city": "Oslo"}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "modelVersion": "openai/gpt-4o-mini",
        "responseId": "r1",
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "totalTokenCount": 130,
            "cachedContentTokenCount": 40,
            "thoughtsTokenCount": 10,
            "cost": 0.0012,
        },
        "x-faregate": EXTRAS["x-faregate"],
    }


def stream_bytes(events: list[StreamEvent], extras: dict[str, Any] | None = None) -> bytes:
    enc = INBOUND.stream_encoder("m", True, "rid")
    out = b""
    for ev in events:
        out += enc.finish(ev, ev.usage or Usage(), extras or {}) if isinstance(ev, Finish) else enc.encode(ev)
    return out


def decode(data: bytes) -> list[StreamEvent]:
    sse, dec = SseDecoder(), GeminiStreamDecoder()
    events = [e for s in sse.feed(data) for e in dec.feed(s)]
    return events + [e for s in sse.close() for e in dec.feed(s)] + dec.close()


def test_stream_chunks_hold_a_call_until_it_is_whole() -> None:
    events: list[StreamEvent] = [
        Start("up", "x"),
        TextDelta("Hi"),
        ToolCallStart(0, "c1", "w"),
        ToolArgsDelta(0, '{"ci'),
        ToolArgsDelta(0, 'ty":"Oslo"}'),
        Finish("tool_calls", Usage(5, 7)),
    ]
    data = stream_bytes(events, dict(EXTRAS))
    chunks = [json.loads(line[6:]) for line in data.decode().split("\n") if line.startswith("data: ")]
    assert [c["candidates"][0]["content"]["parts"] for c in chunks] == [
        [{"text": "Hi"}],
        [{"functionCall": {"id": "c1", "name": "w", "args": {"city": "Oslo"}}}],
    ]
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP" and last["usageMetadata"]["totalTokenCount"] == 12
    assert last["x-faregate"] == EXTRAS["x-faregate"] and all(c["responseId"] == "rid" for c in chunks)
    error = INBOUND.stream_encoder("m", True, "rid").error(InvalidRequest("bad"))
    assert json.loads(error.decode()[6:]) == {
        "error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}
    }


# --- round trips (hypothesis) ----------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
NAMES = st.sampled_from(["get_weather", "lookup", "f"])
SCALARS = st.one_of(st.integers(-5, 5), st.booleans(), st.text("abc xyz", max_size=6), st.none())
OBJECTS = st.dictionaries(st.sampled_from(["a", "b", "city", "n"]), SCALARS, max_size=3)
IMAGE = st.builds(
    lambda mime, data: {"inlineData": {"mimeType": mime, "data": data}},
    st.sampled_from(["image/png", "image/jpeg"]),
    st.text("ABCabc012+/", min_size=4, max_size=8),
)
FILE = st.builds(
    lambda uri: {"fileData": {"mimeType": "image/png", "fileUri": f"https://img.example/{uri}.png"}},
    st.text("abc", min_size=1, max_size=4),
)
RESPONSES = st.one_of(
    st.builds(lambda t: {"content": t}, TEXT | st.just("{}")),
    st.builds(lambda t: {"error": t}, TEXT),
    OBJECTS.filter(lambda o: len(o) != 1),  # a lone `content`/`output`/`error` key is the text form
)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Alternating turns as a Gemini client keeps them: each model turn's calls answered in the next."""
    contents: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        parts = draw(
            st.lists(st.one_of(st.builds(lambda t: {"text": t}, TEXT), IMAGE, FILE), min_size=1, max_size=3)
        )
        contents.append({"role": draw(st.sampled_from(["user", None])), "parts": parts})
        calls = draw(st.lists(st.builds(lambda n, a: {"name": n, "args": a}, NAMES, OBJECTS), max_size=2))
        said = draw(st.lists(st.builds(lambda t: {"text": t}, TEXT), max_size=1, min_size=0 if calls else 1))
        contents.append({"role": "model", "parts": said + [{"functionCall": c} for c in calls]})
        if calls:
            answers = [{"functionResponse": {"name": c["name"], "response": draw(RESPONSES)}} for c in calls]
            contents.append({"role": "user", "parts": answers})
    return contents


def normalized(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the adapter writes for these contents: roles explicit, consecutive same-role turns merged."""
    out: list[dict[str, Any]] = []
    for c in contents:
        role = c.get("role") or "user"
        if out and out[-1]["role"] == role:
            out[-1]["parts"] += c["parts"]
        else:
            out.append({"role": role, "parts": list(c["parts"])})
    return out


SCHEMA_TYPES = st.sampled_from(["STRING", "INTEGER", "NUMBER", "BOOLEAN"])
OPENAPI_PROPS = st.dictionaries(
    st.sampled_from(["city", "n", "when"]),
    st.builds(
        lambda t, nullable: {"type": t, **({"nullable": True} if nullable else {})},
        SCHEMA_TYPES,
        st.booleans(),
    ),
    max_size=3,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    conversations(),
    st.none() | TEXT,
    st.lists(st.tuples(NAMES, st.none() | TEXT, OPENAPI_PROPS), max_size=2, unique_by=lambda t: t[0]),
    st.fixed_dictionaries(
        {},
        optional={
            "temperature": st.floats(0, 2),
            "topP": st.floats(0, 1),
            "topK": st.integers(1, 64),
            "maxOutputTokens": st.integers(1, 9999),
            "stopSequences": st.lists(TEXT, min_size=1, max_size=2),
            "seed": st.integers(0, 99),
            "presencePenalty": st.floats(-1, 1),
        },
    ),
)
def test_a_request_parsed_and_rendered_for_gemini_is_the_request(
    contents: list[dict[str, Any]],
    system: str | None,
    tools: list[tuple[str, str | None, dict[str, Any]]],
    config: dict[str, Any],
) -> None:
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = {"role": "user", "parts": [{"text": system}]}
    decls = []
    for name, description, props in tools:
        decl: dict[str, Any] = {"name": name, "parameters": {"type": "OBJECT", "properties": props}}
        if description is not None:
            decl["description"] = description
        decls.append(decl)
    if decls:
        body["tools"] = [{"functionDeclarations": decls}]
    if config:
        body["generationConfig"] = config
    sent = upstream_body(body)
    assert sent["contents"] == normalized(contents)
    assert sent.get("systemInstruction") == (None if system is None else {"parts": [{"text": system}]})
    assert sent.get("generationConfig", {}) == config
    expected_decls = []
    for decl in decls:
        props = decl["parameters"]["properties"]
        want = {k: v for k, v in decl.items() if k != "parameters"}
        if props:  # an OBJECT without properties is left out (Gemini rejects it)
            want["parameters"] = {
                "type": "object",
                "properties": {k: {**p, "type": p["type"].lower()} for k, p in props.items()},
            }
        expected_decls.append(want)
    assert sent.get("tools") == ([{"functionDeclarations": expected_decls}] if decls else None)


ARGS = OBJECTS.map(lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":")))
USAGES = st.builds(
    lambda p, c, cached, thoughts: Usage(
        p + cached, c + thoughts, cache_read_tokens=cached, reasoning_tokens=thoughts
    ),
    st.integers(0, 10**6),
    st.integers(0, 10**5),
    st.integers(0, 10**5),
    st.integers(0, 10**4),
)


@st.composite
def responses(draw: st.DrawFn) -> ChatResponse:
    calls = tuple(ToolCall(f"call_{i}", draw(NAMES), draw(ARGS)) for i in range(draw(st.integers(0, 3))))
    reasons: list[FinishReason] = ["tool_calls", "length"] if calls else ["stop", "length", "content_filter"]
    text = draw(st.text(st.characters(codec="utf-8"), max_size=20))
    return ChatResponse("id", "m", text, calls, draw(st.sampled_from(reasons)), draw(USAGES))


@settings(max_examples=200)
@given(responses())
def test_a_rendered_response_parses_back_to_itself(resp: ChatResponse) -> None:
    assert resp.usage is not None
    wire = INBOUND.render_chat(resp, "m", resp.usage, dict(EXTRAS))
    again = parse_chat_response(json.dumps(wire))
    assert (again.text, again.tool_calls, again.finish_reason) == (
        resp.text,
        resp.tool_calls,
        resp.finish_reason,
    )
    assert again.id == "r1"
    u, v = again.usage, resp.usage
    assert u is not None and (u.prompt_tokens, u.completion_tokens, u.cache_read_tokens) == (
        v.prompt_tokens,
        v.completion_tokens,
        v.cache_read_tokens,
    )


@st.composite
def event_streams(draw: st.DrawFn) -> list[StreamEvent]:
    events: list[StreamEvent] = [Start("up", "m")]
    calls = 0
    for kind in draw(st.lists(st.sampled_from(["text", "call"]), max_size=6)):
        if kind == "text":
            events.append(TextDelta(draw(TEXT)))
            continue
        args = draw(ARGS)
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(args) - 1)), max_size=3)))
        pieces = [args[i:j] for i, j in zip([0, *cuts], [*cuts, len(args)], strict=True) if args[i:j]]
        events.append(ToolCallStart(calls, f"call_{calls}", draw(NAMES)))
        events += [ToolArgsDelta(calls, p) for p in pieces]
        calls += 1
    reasons: list[FinishReason] = ["tool_calls", "length"] if calls else ["stop", "length", "content_filter"]
    events.append(Finish(draw(st.sampled_from(reasons)), draw(USAGES)))
    return events


@settings(max_examples=200)
@given(event_streams())
def test_a_rendered_stream_decodes_back_to_the_same_answer(events: list[StreamEvent]) -> None:
    got = collect_stream(decode(stream_bytes(events)))
    want = collect_stream(events)
    assert (got.text, got.tool_calls, got.finish_reason) == (want.text, want.tool_calls, want.finish_reason)
    assert got.id == "rid"
    assert got.usage is not None and want.usage is not None
    assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (
        want.usage.prompt_tokens,
        want.usage.completion_tokens,
    )


@given(OPENAPI_PROPS)
def test_openapi_schemas_become_json_schema(props: dict[str, Any]) -> None:
    schema = json_schema({"type": "OBJECT", "properties": props, "propertyOrdering": list(props)})
    assert schema["type"] == "object" and "propertyOrdering" not in schema
    for name, prop in props.items():
        t = prop["type"].lower()
        assert schema["properties"][name] == {"type": [t, "null"] if prop.get("nullable") else t}


def test_sampling_settings_between_openai_and_gemini_names() -> None:
    extra = {"seed": 1, "presence_penalty": 0.1, "logit_bias": {}}
    assert translate_extra(extra, "openai", "gemini") == (
        {"generationConfig.seed": 1, "generationConfig.presencePenalty": 0.1},
        ["logit_bias"],
    )
    gemini = {"generationConfig.frequencyPenalty": 0.2, "safetySettings": []}
    assert translate_extra(gemini, "gemini", "openai") == ({"frequency_penalty": 0.2}, ["safetySettings"])
    assert translate_extra(extra, "openai", "anthropic") == ({}, ["seed", "presence_penalty", "logit_bias"])
