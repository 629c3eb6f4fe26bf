"""The model's reasoning text in the canonical model (canonical.py `Thought`, `ReasoningDelta`): streamed
deltas fold into the thoughts a whole answer carries, a signature goes back only to its own format, and
each wire format reads and renders the thoughts (round trips where a translator has many shapes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    Finish,
    Message,
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
    WireApi,
    collect_stream,
    signed_for,
)
from faregate.providers.anthropic import AnthropicAdapter, AnthropicInbound
from faregate.providers.anthropic.render import AnthropicStreamEncoder, render_response
from faregate.providers.anthropic.request import render_request as render_anthropic
from faregate.providers.anthropic.stream import AnthropicStreamDecoder
from faregate.providers.openai import OpenAIAdapter, OpenAIInbound, OpenAIStreamDecoder
from faregate.providers.openai.render import OpenAIStreamEncoder, render_chat
from faregate.providers.reasoning import thought_view, view_event, view_thoughts
from faregate.providers.sse import SseDecoder
from faregate.providers.stops import StopFilter


def test_a_signature_closes_a_thought_and_the_answer_moving_on_closes_an_unsigned_one() -> None:
    events: list[StreamEvent] = [
        Start("r", "m"),
        ReasoningDelta("Let me "),
        ReasoningDelta("think.", origin="anthropic"),
        ReasoningDelta("", "sig-1", origin="anthropic"),
        ReasoningDelta("", "opaque", origin="anthropic", redacted=True),
        TextDelta("Hi"),
        ReasoningDelta("more"),
        ToolCallStart(0, "call_1", "f"),
        ToolArgsDelta(0, "{}"),
        ReasoningDelta("after"),
        Finish("tool_calls"),
    ]
    resp = collect_stream(events)
    assert resp.thoughts == (
        Thought("Let me think.", "sig-1", "anthropic"),
        Thought("", "opaque", "anthropic", redacted=True),
        Thought("more"),
        Thought("after"),
    )
    assert resp.reasoning_text == "Let me think.moreafter"
    assert resp.text == "Hi"


def test_only_a_formats_own_signed_thoughts_go_back_to_it() -> None:
    thoughts = (
        Thought("a", "sig", "anthropic"),
        Thought("b", "gsig", "gemini"),
        Thought("c"),
        Thought("", "data", "anthropic", redacted=True),
    )
    assert signed_for(thoughts, "anthropic") == (thoughts[0], thoughts[3])
    assert signed_for(thoughts, "gemini") == (thoughts[1],)
    assert signed_for(thoughts, "openai") == ()


@given(st.lists(st.text("ab ", max_size=6), max_size=8))
def test_reasoning_is_not_answer_text_for_stop_sequences(pieces: list[str]) -> None:
    f = StopFilter(("b",))
    events: list[StreamEvent] = []
    for piece in pieces:
        events += f.feed(ReasoningDelta(piece))
    events += f.feed(TextDelta("xbz"))
    events += f.feed(ReasoningDelta("late"))  # after the match: not shown, like the rest of the answer
    events += f.feed(Finish("stop"))
    resp = collect_stream(events)
    assert resp.reasoning_text == "".join(pieces)
    assert (resp.text, resp.stop_sequence) == ("x", "b")


# --- OpenAI chat format: upstream fields in, OpenRouter's shape out, a client's pass-back in ------------

ORIGINS: list[WireApi | None] = [None, "anthropic", "gemini", "openai-responses"]
THOUGHT = st.one_of(
    st.builds(Thought, st.text(min_size=1, max_size=12)),
    st.builds(
        Thought,
        st.text(max_size=12),
        st.text(min_size=1, max_size=12),
        st.sampled_from(ORIGINS),
    ),
    st.builds(
        lambda sig, origin: Thought("", sig, origin, redacted=True),
        st.text(min_size=1, max_size=12),
        st.sampled_from(ORIGINS),
    ),
)


def openai_response(message: dict[str, Any]) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "model": "deepseek-reasoner",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {"reasoning_content": "Think."},  # DeepSeek, vLLM
        {"reasoning": "Think."},  # OpenRouter, Ollama
        {"reasoning_details": [{"type": "reasoning.text", "text": "Think.", "signature": "s", "index": 0}]},
        {"reasoning": "Think.", "reasoning_details": [{"type": "reasoning.text", "text": "Think."}]},
    ],
)
def test_an_openai_format_upstreams_reasoning_is_read_without_its_signatures(fields: dict[str, Any]) -> None:
    resp = OpenAIAdapter().parse_chat_response(openai_response({"content": "Hi", **fields}))
    assert (resp.text, resp.thoughts) == ("Hi", (Thought("Think."),))


def test_an_answer_without_reasoning_has_no_thoughts() -> None:
    resp = OpenAIAdapter().parse_chat_response(openai_response({"content": "Hi", "reasoning": None}))
    assert resp.thoughts == ()
    rendered = render_chat(resp, "m", Usage(), {})
    assert "reasoning" not in rendered["choices"][0]["message"]


@given(st.lists(THOUGHT, min_size=1, max_size=4).map(tuple))
def test_thoughts_rendered_for_an_openai_client_come_back_when_it_passes_the_turn_back(
    thoughts: tuple[Thought, ...],
) -> None:
    resp = ChatResponse("r", "m", "Hi", thoughts=thoughts)
    message = render_chat(resp, "m", Usage(), {})["choices"][0]["message"]
    assert message["reasoning"] == ("".join(t.text for t in thoughts) or None)
    ChatCompletion.model_validate(render_chat(resp, "m", Usage(), {}))  # the SDK reads it
    req, _ = OpenAIInbound().parse_chat(
        {"model": "m", "messages": [{"role": "user", "content": "q"}, message]}
    )
    assert req.messages[1].thoughts == thoughts


def stream_bytes(events: list[StreamEvent]) -> bytes:
    encoder = OpenAIStreamEncoder("m", include_usage=False)
    return b"".join(encoder.encode(ev) for ev in events)


@given(st.lists(st.text(max_size=6), max_size=6), st.text(max_size=6))
def test_streamed_reasoning_reaches_an_openai_client_and_reads_back(pieces: list[str], answer: str) -> None:
    events: list[StreamEvent] = [Start("r", "m"), *(ReasoningDelta(p) for p in pieces)]
    events += [TextDelta(answer), Finish("stop", Usage(1, 2))]
    decoder, sse = OpenAIStreamDecoder(), SseDecoder()
    back = [e for s in [*sse.feed(stream_bytes(events)), *sse.close()] for e in decoder.feed(s)]
    resp = collect_stream(back)
    assert (resp.reasoning_text, resp.text) == ("".join(pieces), answer)


def test_a_streamed_signature_is_in_reasoning_details_and_each_thought_has_its_index() -> None:
    events: list[StreamEvent] = [
        Start("r", "m"),
        ReasoningDelta("a", origin="anthropic"),
        ReasoningDelta("", "sig", origin="anthropic"),
        ReasoningDelta("", "data", origin="anthropic", redacted=True),
    ]
    chunks = [json.loads(line[6:]) for line in stream_bytes(events).decode().splitlines() if line[6:7] == "{"]
    deltas = [c["choices"][0]["delta"] for c in chunks[1:]]
    assert deltas == [
        {
            "reasoning": "a",
            "reasoning_details": [
                {"type": "reasoning.text", "text": "a", "format": "anthropic-claude-v1", "index": 0}
            ],
        },
        {
            "reasoning": None,
            "reasoning_details": [
                {
                    "type": "reasoning.text",
                    "text": "",
                    "format": "anthropic-claude-v1",
                    "index": 0,
                    "signature": "sig",
                }
            ],
        },
        {
            "reasoning": None,
            "reasoning_details": [
                {"type": "reasoning.encrypted", "data": "data", "format": "anthropic-claude-v1", "index": 1}
            ],
        },
    ]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)


def test_what_a_client_sees_of_the_thoughts() -> None:
    def view(source: WireApi, reasoning: Reasoning | None) -> str:
        req = ChatRequest("m", (Message("user", (TextPart("q"),)),), reasoning=reasoning, source_api=source)
        return thought_view(req)

    assert view("openai", None) == "text"  # OpenRouter returns the reasoning unasked
    assert view("anthropic", None) == "none"  # thinking blocks only when thinking is on
    assert view("anthropic", Reasoning(budget_tokens=2048)) == "text"
    assert view("anthropic", Reasoning(budget_tokens=2048, include_thoughts=False)) == "signed"
    assert view("openai", Reasoning(effort="none")) == "none"
    resp = ChatResponse("r", "m", "Hi", thoughts=(Thought("a", "s", "anthropic"), Thought("b")))
    assert view_thoughts(resp, "signed").thoughts == (Thought("", "s", "anthropic"),)
    assert view_thoughts(resp, "none").thoughts == ()
    assert view_event(ReasoningDelta("a"), "signed") is None
    assert view_event(ReasoningDelta("a", "s"), "signed") == ReasoningDelta("", "s")


# --- Anthropic Messages: thinking blocks from upstreams, for clients, and passed back -------------------

SIGNED = st.one_of(
    st.builds(Thought, st.text(min_size=1, max_size=12)),
    st.builds(
        Thought,
        st.text(max_size=12),
        st.text("AZaz09+/=", min_size=1, max_size=12),
        st.sampled_from(["anthropic", "gemini", "openai-responses"]),
    ),
    st.builds(
        lambda sig, origin: Thought("", sig, origin, redacted=True),
        st.text("AZaz09+/=", min_size=1, max_size=12),
        st.sampled_from(["anthropic", "gemini"]),
    ),
)
USER_Q = {"role": "user", "content": "q"}
STREAM_EVENT: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)
ANTHROPIC_REPLY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "Let me see.", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "ZGF0YQ=="},
        {"type": "text", "text": "Hi"},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 5},
}


def test_an_anthropic_upstreams_thinking_blocks_are_thoughts_it_signed() -> None:
    resp = AnthropicAdapter().parse_chat_response(json.dumps(ANTHROPIC_REPLY).encode())
    assert resp.thoughts == (
        Thought("Let me see.", "c2ln", "anthropic"),
        Thought("", "ZGF0YQ==", "anthropic", redacted=True),
    )
    assert resp.text == "Hi"


@given(st.lists(SIGNED, max_size=4).map(tuple))
def test_thoughts_rendered_for_an_anthropic_client_come_back_when_it_passes_the_turn_back(
    thoughts: tuple[Thought, ...],
) -> None:
    resp = ChatResponse("r", "m", "Hi", thoughts=thoughts)
    message = render_response(resp, "m", Usage(1, 2), {})
    AnthropicMessage.model_validate(message)  # the SDK reads it
    assert [b["type"] for b in message["content"]][-1] == "text"  # thinking comes first
    turn = {"role": "assistant", "content": message["content"]}
    req, _ = AnthropicInbound().parse_chat({"max_tokens": 9, "messages": [USER_Q, turn]})
    assert req.messages[1].thoughts == thoughts
    # Sent on to an Anthropic upstream: only the blocks Anthropic signed, exactly as it made them.
    body, _ = render_anthropic(req, "claude-sonnet-4-5", None)
    sent = body["messages"][1]["content"]
    assert sent[: len(sent) - 1] == [
        {"type": "redacted_thinking", "data": t.signature}
        if t.redacted
        else {"type": "thinking", "thinking": t.text, "signature": t.signature}
        for t in signed_for(thoughts, "anthropic")
    ]


def anthropic_stream(events: list[StreamEvent]) -> bytes:
    encoder = AnthropicStreamEncoder("m")
    return b"".join(encoder.encode(ev) for ev in events)


def test_a_streamed_thought_follows_anthropics_event_order() -> None:
    events: list[StreamEvent] = [
        Start("r", "m"),
        ReasoningDelta("Let me ", origin="anthropic"),
        ReasoningDelta("see.", origin="anthropic"),
        ReasoningDelta("", "c2ln", origin="anthropic"),
        ReasoningDelta("", "ZGF0YQ==", origin="anthropic", redacted=True),
        TextDelta("Hi"),
        Finish("stop", Usage(1, 2)),
    ]
    sse = SseDecoder()
    frames = [*sse.feed(anthropic_stream(events)), *sse.close()]
    data = [json.loads(f.data) for f in frames]
    assert [(d["type"], d.get("index")) for d in data] == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert data[2]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert [d["delta"] for d in data[3:6]] == [
        {"type": "thinking_delta", "thinking": "Let me "},
        {"type": "thinking_delta", "thinking": "see."},
        {"type": "signature_delta", "signature": "c2ln"},
    ]
    assert data[7]["content_block"] == {"type": "redacted_thinking", "data": "ZGF0YQ=="}
    for d in data:
        if d["type"] != "ping":  # not in the SDK's event union
            STREAM_EVENT.validate_python(d)


@given(st.lists(SIGNED, max_size=4), st.text(max_size=6), st.data())
def test_streamed_thoughts_read_back_as_the_client_got_them(
    thoughts: list[Thought], answer: str, data: st.DataObject
) -> None:
    """Each thought cut into deltas, through the encoder for Anthropic clients and an Anthropic decoder
    (what a client, or a faregate in front of this one, reads)."""
    events: list[StreamEvent] = [Start("msg_1", "m")]
    for t in thoughts:
        if t.redacted:
            events.append(ReasoningDelta("", t.signature, origin=t.origin, redacted=True))
            continue
        cut = data.draw(st.integers(0, len(t.text)))
        events += [ReasoningDelta(p, origin=t.origin) for p in (t.text[:cut], t.text[cut:]) if p]
        if t.signature is not None:
            events.append(ReasoningDelta("", t.signature, origin=t.origin))
    events += [TextDelta(answer), Finish("stop", Usage(1, 2))]
    sse, decoder = SseDecoder(), AnthropicStreamDecoder()
    back = [e for f in [*sse.feed(anthropic_stream(events)), *sse.close()] for e in decoder.feed(f)]
    resp = collect_stream(back)
    assert resp.text == answer
    # Unsigned thoughts in a row are one thinking block for the client, as for any reader of the stream.
    assert resp.thoughts == collect_stream(events).thoughts


def user_q() -> Message:
    return Message("user", (TextPart("q"),))


def test_thinking_stays_off_for_a_tool_turn_that_anthropic_did_not_sign() -> None:
    call = ToolCall("toolu_1", "f", "{}")
    result = Message("tool", (TextPart("42"),), tool_call_id="toolu_1")

    def sent(thoughts: tuple[Thought, ...]) -> tuple[dict[str, Any], list[str]]:
        turn = Message("assistant", tool_calls=(call,), thoughts=thoughts)
        req = ChatRequest("m", (user_q(), turn, result), reasoning=Reasoning(effort="low"))
        return render_anthropic(req, "claude-sonnet-4-5", 4096)

    body, dropped = sent((Thought("from deepseek"),))
    assert "thinking" not in body and dropped[0].startswith("reasoning (the assistant turn")
    body, dropped = sent((Thought("mine", "c2ln", "anthropic"),))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and not dropped
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "mine", "signature": "c2ln"}


def test_thinking_stays_off_with_a_forced_tool_choice() -> None:
    tool = Tool("f", None, {"type": "object"})
    for choice, on in (
        (ToolChoice("auto"), True),
        (ToolChoice("required"), False),
        (ToolChoice("tool", "f"), False),
    ):
        req = ChatRequest(
            "m", (user_q(),), tools=(tool,), tool_choice=choice, reasoning=Reasoning(effort="low")
        )
        body, dropped = render_anthropic(req, "claude-sonnet-4-5", 4096)
        assert ("thinking" in body) is on
        assert bool(dropped) is not on and all(d.startswith("reasoning (Anthropic takes no") for d in dropped)
