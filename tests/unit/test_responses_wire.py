"""The Responses API translators, pure: items ⇄ canonical messages, answers → output items, and the stream
encoder agreeing with the non-streamed object (hypothesis round trips)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from faregate.canonical import (
    PDF,
    ChatRequest,
    ChatResponse,
    FilePart,
    Finish,
    ImagePart,
    Message,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    TextPart,
    Thought,
    ToolArgsDelta,
    ToolCall,
    ToolCallStart,
    Usage,
    collect_stream,
    signed_for,
)
from faregate.providers.openai_responses.inbound import parse_responses
from faregate.providers.openai_responses.items import parse_items, render_items
from faregate.providers.openai_responses.reasoning import parse_reasoning_item
from faregate.providers.openai_responses.render import ResponseMeta, ResponsesStreamEncoder, render_response
from faregate.providers.openai_responses.request import render_request
from faregate.providers.openai_responses.response import parse_chat_response as parse_upstream_response
from faregate.providers.openai_responses.stream import ResponsesStreamDecoder
from faregate.providers.sse import SseDecoder

text = st.text(min_size=1, max_size=20)
ident = st.text("abcdefgh_0123", min_size=1, max_size=8)
image = st.one_of(
    st.builds(
        ImagePart, url=st.just("https://example.com/a.png"), detail=st.sampled_from([None, "low", "high"])
    ),
    st.builds(ImagePart, data_b64=st.just("aGVsbG8="), media_type=st.just("image/png")),
    st.builds(ImagePart, file_id=ident.map(lambda s: "file-" + s), detail=st.sampled_from([None, "low"])),
)
names = st.sampled_from([None, "report.pdf"])
files = st.one_of(
    st.builds(FilePart, names, url=st.just("https://example.com/report.pdf")),
    st.builds(FilePart, names, file_id=ident.map(lambda s: "file-" + s)),
    st.builds(FilePart, names, data_b64=st.just("JVBERi0="), media_type=st.sampled_from([PDF, "image/webp"])),
)
# Thoughts as they reach a Responses item: a Responses upstream's (its encrypted content as the signature),
# another format's signed or redacted ones (faregate's own encrypted content), unsigned text.
thoughts = st.lists(
    st.one_of(
        st.builds(Thought, text, ident.map(lambda s: "gAAAA" + s), st.just("openai-responses")),
        st.builds(Thought, st.one_of(st.just(""), text), ident, st.sampled_from(["anthropic", "gemini"])),
        st.builds(Thought, st.just(""), ident, st.just("anthropic"), st.just(True)),
        st.builds(Thought, text),
    ),
    max_size=2,
).map(tuple)
# A built-in tool's output items, as a Responses upstream gives them and a client passes them back.
provider_items = st.lists(
    st.builds(
        lambda i, q: {
            "type": "web_search_call",
            "id": "ws_" + i,
            "status": "completed",
            "action": {"query": q},
        },
        ident,
        text,
    ),
    max_size=2,
).map(tuple)
calls = st.lists(
    st.builds(ToolCall, ident.map(lambda s: "call_" + s), ident, st.just('{"a":1}')), max_size=3
).map(lambda cs: tuple({c.id: c for c in cs}.values()))


@st.composite
def conversations(draw: Any) -> tuple[Message, ...]:
    """Turns as a Responses client sends them: user/system with text, images and files, assistant with text
    and/or tool calls and the reasoning before them, each call answered by a tool result; never two assistant turns in a row."""
    out: list[Message] = []
    for _ in range(draw(st.integers(1, 6))):
        role = draw(st.sampled_from(["system", "user", "assistant"]))
        if role == "assistant" and out and out[-1].role == "assistant":
            role = "user"
        if role == "assistant":
            content = tuple(TextPart(t) for t in draw(st.lists(text, max_size=2)))
            tool_calls = draw(calls)
            out.append(
                Message(
                    "assistant",
                    content,
                    tool_calls,
                    thoughts=draw(thoughts),
                    provider_items=draw(provider_items),
                )
            )
            for c in tool_calls:
                parts = tuple(draw(st.lists(st.one_of(text.map(TextPart), image), min_size=1, max_size=2)))
                out.append(Message("tool", parts, tool_call_id=c.id))
        else:
            parts = draw(
                st.lists(
                    st.one_of(text.map(TextPart), image, files) if role == "user" else text.map(TextPart),
                    max_size=3,
                )
            )
            out.append(Message(role, tuple(parts)))
    return tuple(out)


@settings(max_examples=80, deadline=None)
@given(conversations())
def test_items_round_trip_through_canonical(messages: tuple[Message, ...]) -> None:
    items = render_items(messages)
    json.dumps(items)  # plain JSON
    assert parse_items(items) == messages


def test_reasoning_items_are_accepted_and_not_sent_on() -> None:
    items = [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
    ]
    messages = parse_items(items)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [c.id for c in messages[1].tool_calls] == ["c1", "c2"]  # consecutive calls: one assistant turn


def test_request_fields_map_to_canonical() -> None:
    parsed = parse_responses(
        {
            "model": "auto",
            "input": "hi",
            "instructions": "be brief",
            "max_output_tokens": 50,
            "text": {
                "format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}
            },
            "reasoning": {"effort": "low"},
            "parallel_tool_calls": False,
            "provider": {"order": ["groq"]},
            "service_tier": "flex",
        }
    )
    req = parsed.chat
    assert [m.role for m in req.messages] == ["system", "user"]
    assert req.max_tokens == 50 and req.reasoning is not None and req.reasoning.effort == "low"
    assert req.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    }
    assert parsed.routing == {"provider": {"order": ["groq"]}}
    assert dict(req.extra) == {"parallel_tool_calls": False, "service_tier": "flex"}
    assert parsed.store is True and parsed.input_items[0]["id"].startswith("msg_")


def _meta() -> ResponseMeta:
    counter = itertools.count()
    return ResponseMeta("resp_x", 1, {"store": True}, lambda prefix: f"{prefix}{next(counter)}")


def _strip_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in i.items() if k != "id"} for i in items]


def _events(resp: ChatResponse, pieces: int) -> list[StreamEvent]:
    events: list[StreamEvent] = [Start("up", "m")]
    size = max(1, len(resp.text) // pieces)
    events += [TextDelta(resp.text[i : i + size]) for i in range(0, len(resp.text), size)]
    for n, c in enumerate(resp.tool_calls):
        events.append(ToolCallStart(n, c.id, c.name))
        events += [ToolArgsDelta(n, c.arguments[i : i + 3]) for i in range(0, len(c.arguments), 3)]
    events.append(Finish(resp.finish_reason, resp.usage))
    return events


@settings(max_examples=80, deadline=None)
@given(
    st.text(max_size=40),
    calls,
    st.sampled_from(["stop", "length", "tool_calls"]),
    st.integers(1, 5),
)
def test_the_stream_ends_in_the_object_a_plain_call_gives(
    body: str, tool_calls: tuple[ToolCall, ...], finish: Any, pieces: int
) -> None:
    usage = Usage(10, 5)
    resp = ChatResponse("up", "m", body, tool_calls, finish, usage)
    plain = render_response(_meta(), resp, "m", usage, {})
    finals: list[dict[str, Any]] = []
    enc = ResponsesStreamEncoder(_meta(), "m", finals.append)
    wire = b"".join(enc.encode(ev) for ev in _events(resp, pieces)[:-1]) + enc.finish(
        Finish(finish, usage), usage, {}
    )
    frames = SseDecoder().feed(wire)
    data = [json.loads(f.data) for f in frames]
    assert [f.event for f in frames] == [d["type"] for d in data]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert data[0]["type"] == "response.created" and data[-1]["type"] == f"response.{plain['status']}"
    final = data[-1]["response"]
    assert final == finals[0]
    assert _strip_ids(final["output"]) == _strip_ids(plain["output"])
    assert final["usage"] == plain["usage"] and final["status"] == plain["status"]
    deltas = "".join(d["delta"] for d in data if d["type"] == "response.output_text.delta")
    assert deltas == body


def _reasoning_events(thought: Thought, pieces: int) -> list[StreamEvent]:
    size = max(1, len(thought.text) // pieces)
    deltas = [thought.text[i : i + size] for i in range(0, len(thought.text), size)] or [""]
    events: list[StreamEvent] = [ReasoningDelta(d, origin=thought.origin) for d in deltas[:-1]]
    events.append(
        ReasoningDelta(deltas[-1], thought.signature, origin=thought.origin, redacted=thought.redacted)
    )
    return events


@settings(max_examples=80, deadline=None)
@given(
    thoughts.filter(lambda ts: all(t.signature for t in ts)), st.text(max_size=30), calls, st.integers(1, 4)
)
def test_streamed_reasoning_ends_in_the_object_a_plain_call_gives(
    signed: tuple[Thought, ...], body: str, tool_calls: tuple[ToolCall, ...], pieces: int
) -> None:
    """Reasoning items (summary events with their indexes) streamed, and the same items unstreamed; each
    item's encrypted content reads back as its thought, and a client that asked for neither summaries nor
    encrypted content sees the items bare while the store keeps them whole."""
    usage = Usage(10, 5)
    resp = ChatResponse(
        "up", "m", body, tool_calls, "tool_calls" if tool_calls else "stop", usage, thoughts=signed
    )
    for shown in (True, False):
        meta = replace(_meta(), summaries=shown, encrypted=shown)
        plain = render_response(meta, resp, "m", usage, {})
        finals: list[dict[str, Any]] = []
        enc = ResponsesStreamEncoder(replace(_meta(), summaries=shown, encrypted=shown), "m", finals.append)
        events: list[StreamEvent] = [Start("up", "m")]
        for t in signed:
            events += _reasoning_events(t, pieces)
        events += _events(resp, pieces)[1:-1]
        wire = b"".join(enc.encode(ev) for ev in events) + enc.finish(
            Finish(resp.finish_reason, usage), usage, {}
        )
        data = [json.loads(f.data) for f in SseDecoder().feed(wire)]
        assert [d["sequence_number"] for d in data] == list(range(len(data)))
        stored = finals[0]
        assert _strip_ids(stored["output"]) == _strip_ids(plain["output"])
        assert [parse_reasoning_item(i, "output") for i in stored["output"] if i["type"] == "reasoning"] == [
            replace(t, origin=t.origin) for t in signed
        ]
        assert data[-1]["response"] == meta.shown(stored)
        for n, t in enumerate(signed):
            item = data[-1]["response"]["output"][n]
            assert item["type"] == "reasoning" and ("encrypted_content" in item) is shown
            assert item["summary"] == ([{"type": "summary_text", "text": t.text}] if shown and t.text else [])
            mine = [d for d in data if d.get("output_index") == n]
            kinds = [d["type"] for d in mine]
            assert kinds[0] == "response.output_item.added" and kinds[-1] == "response.output_item.done"
            summary = [d for d in mine if d["type"] == "response.reasoning_summary_text.delta"]
            assert "".join(d["delta"] for d in summary) == (t.text if shown else "")
            assert all(d["summary_index"] == 0 and d["item_id"] == item["id"] for d in summary)


# --- the `api: openai-responses` upstream format: canonical ⇄ its request, answer and stream -----------


def _as_upstream_sees(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """What a Responses upstream's request carries of a conversation: the leading system text as one
    `instructions`, thoughts only of its own signing."""
    lead = next((i for i, m in enumerate(messages) if m.role != "system"), len(messages))
    text = "\n\n".join(m.text for m in messages[:lead] if m.text)
    head = (Message("system", (TextPart(text),)),) if text else ()
    rest = tuple(replace(m, thoughts=signed_for(m.thoughts, "openai-responses")) for m in messages[lead:])
    return (*head, *rest)


@settings(max_examples=80, deadline=None)
@given(conversations().filter(lambda ms: any(m.role != "system" for m in ms)), st.booleans())
def test_a_responses_upstream_request_reads_back_as_the_conversation(
    messages: tuple[Message, ...], reasons: bool
) -> None:
    """canonical → the upstream body (`render_request`) → what a Responses client sending that body means
    (`parse_responses`): the same turns, files, images by id and built-in tool items included."""
    req = ChatRequest("m", messages, max_tokens=100)
    body, _ = render_request(req, "gpt-6-luna" if reasons else "gpt-4o")
    assert body["store"] is False and body["model"] in ("gpt-6-luna", "gpt-4o")
    parsed = parse_responses(json.loads(json.dumps(body)))
    assert parsed.with_history(()).messages == _as_upstream_sees(messages)
    assert parsed.chat.max_tokens == 100


own_thoughts = st.lists(
    st.builds(Thought, text, ident.map(lambda s: "gAAAA" + s), st.just("openai-responses")), max_size=2
).map(tuple)


@st.composite
def upstream_answers(draw: Any) -> ChatResponse:
    tool_calls = draw(calls)
    finish: Any = "tool_calls" if tool_calls else draw(st.sampled_from(["stop", "length"]))
    usage = Usage(
        draw(st.integers(1, 500)), draw(st.integers(1, 500)), draw(st.integers(0, 1)), reasoning_tokens=3
    )
    return ChatResponse(
        "up",
        "gpt-6-luna",
        draw(st.text(max_size=40)),
        tool_calls,
        finish,
        usage,
        thoughts=draw(own_thoughts),
        provider_items=draw(provider_items),
    )


def _same_answer(got: ChatResponse, sent: ChatResponse) -> None:
    assert (got.text, got.tool_calls, got.finish_reason) == (sent.text, sent.tool_calls, sent.finish_reason)
    assert got.usage == sent.usage


@settings(max_examples=80, deadline=None)
@given(upstream_answers())
def test_a_responses_upstream_answer_reads_back_as_the_answer(resp: ChatResponse) -> None:
    """canonical → a `response` object (what a Responses server answers) → the upstream parser: the text,
    calls, finish, usage, its reasoning (signature = encrypted content) and built-in tool items."""
    meta = replace(_meta(), summaries=True, encrypted=True)
    body = render_response(meta, resp, "gpt-6-luna", resp.usage or Usage(0, 0), {})
    got = parse_upstream_response(json.dumps(body).encode())
    _same_answer(got, resp)
    assert got.thoughts == resp.thoughts
    assert got.provider_items == resp.provider_items


@settings(max_examples=80, deadline=None)
@given(upstream_answers().map(lambda r: replace(r, thoughts=(), provider_items=())), st.integers(1, 5))
def test_a_responses_upstream_stream_reads_back_as_the_answer(resp: ChatResponse, pieces: int) -> None:
    """canonical events → the semantic event stream a Responses server sends → the upstream's decoder →
    `collect_stream`: the answer a plain call gives."""
    usage = resp.usage or Usage(0, 0)
    enc = ResponsesStreamEncoder(_meta(), "gpt-6-luna", lambda _: None)
    events = _events(resp, pieces)
    wire = b"".join(enc.encode(ev) for ev in events[:-1]) + enc.finish(
        Finish(resp.finish_reason, usage), usage, {}
    )
    decoder = ResponsesStreamDecoder()
    out: list[StreamEvent] = []
    for frame in SseDecoder().feed(wire):
        out += decoder.feed(frame)
    out += decoder.close()
    _same_answer(collect_stream(out), resp)
